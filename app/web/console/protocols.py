"""Console: a protocol run's page (header, plan, step timeline, live feed) and the operator's actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.domain.actions import allowed_run_actions
from app.domain.records import ProtocolRun
from app.domain.scopes import tenant
from app.domain.totals import per_step
from app.errors import NotFoundError, TasksGodzillaError
from app.services import controls, planning
from app.services.artifacts import read_artifact
from app.services.context import Services
from app.store import events, projects, protocols, steps
from app.store import usage as usage_store
from app.web import views
from app.web.console.base import done, entity_id, form, form_version, params, render, services, stream_start
from app.web.console.findings import findings_by_scope
from app.web.scope import scoped

routes = web.RouteTableDef()
FEED = 50

# name -> (label, call); each calls the same service function as the JSON API's action endpoint. A
# button is offered when the operator rules allow it (app/domain/actions.py); a stale page gets a 409.
Action = Callable[[Services, int, int | None], Awaitable[Any]]
ACTIONS: dict[str, tuple[str, Action]] = {
    "start": ("Start", lambda svc, i, v: planning.start_protocol(svc, i, expected_version=v)),
    "run_next_step": ("Run next step", lambda svc, i, v: controls.run_next_step(svc, i)),
    "pause": ("Pause", lambda svc, i, v: controls.pause(svc, i, expected_version=v)),
    "resume": ("Resume", lambda svc, i, v: controls.resume(svc, i, expected_version=v)),
    "cancel": ("Cancel", lambda svc, i, v: controls.cancel(svc, i, expected_version=v)),
    "open_pr": ("Open PR now", lambda svc, i, v: controls.open_pr_now(svc, i)),
}


@routes.get("/protocols/{protocol_id}")
@scoped(tenant())
async def protocol_page(request: web.Request) -> web.Response:
    after = await stream_start(request)
    view = await _live_view(request)
    async with services(request).database.read() as conn:
        feed = await events.recent(conn, protocol_run_id=view["run"].id, limit=FEED)
        found = await findings_by_scope(conn, protocol_run_id=view["run"].id)
    plan_html = await _plan(services(request), view["run"])
    return render(
        request, "console/protocol.html", after=after, plan_html=plan_html, feed=feed, findings=found, **view
    )


@routes.get("/protocols/{protocol_id}/plan")
@scoped(tenant())
async def protocol_plan(request: web.Request) -> web.Response:
    run = await views.protocol_run(services(request), entity_id(request, "protocol_id"))
    return render(request, "console/_plan.html", run=run, plan_html=await _plan(services(request), run))


@routes.get("/protocols/{protocol_id}/live")
@scoped(tenant())
async def protocol_live(request: web.Request) -> web.Response:
    return render(request, "console/_protocol_live.html", **await _live_view(request))


async def _live_view(request: web.Request) -> dict[str, Any]:
    """What changes while the run works: its header and its step timeline."""
    async with services(request).database.snapshot() as conn:  # header and timeline of one moment
        run = await protocols.get(conn, entity_id(request, "protocol_id"))
        plan = await steps.list_for_protocol(conn, run.id)
        project = await projects.get(conn, run.project_id)
        by_step = await usage_store.by_step(conn, run.id)
    usage = per_step(by_step)
    ci = next((s.ci_status for s in reversed(plan) if s.ci_status), None)
    allowed = allowed_run_actions(run.status, plan, has_branch=bool(run.branch_name))
    offered = {a.value: ACTIONS[a.value][0] for a in allowed}
    return {"run": run, "project": project, "steps": plan, "usage": usage, "ci": ci, "actions": offered}


async def _plan(svc: Services, run: ProtocolRun) -> str | None:
    """plan.md's text at the run's head; None before the plan is committed (or when it is unreadable)."""
    try:
        return await read_artifact(svc, run, "plan.md")
    except TasksGodzillaError:
        return None


@routes.post("/protocols/{protocol_id}/actions/{action}")
@scoped(tenant())
async def act(request: web.Request) -> web.Response:
    protocol_id = entity_id(request, "protocol_id")
    action = params(request).path["action"]
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise NotFoundError(f"no action {action[:40]!r}")
    label, call = chosen
    await call(services(request), protocol_id, form_version(await form(request)))
    return done(request, f"/console/protocols/{protocol_id}", f"{label}: done")
