"""Console: a step's page (agent runs, logs, QA report, diff stats) and its actions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain.actions import StepAction, allowed_step_actions
from app.domain.scopes import tenant
from app.errors import NotFoundError
from app.services import controls, quality
from app.store import agent_runs, events, projects, protocols, steps
from app.web.console.base import done, entity_id, form, form_version, params, render, services, stream_start
from app.web.console.findings import findings_by_scope
from app.web.console.format import agent_log
from app.web.console.protocols import FEED
from app.web.scope import scoped

routes = web.RouteTableDef()
# Offered as the operator rules allow (app/domain/actions.py); a stale page still gets the service's 409.
ACTIONS = {
    StepAction.RUN: "Run",
    StepAction.RETRY: "Retry",
    StepAction.RUN_QA: "Run QA",
    StepAction.APPROVE: "Approve",
}


@routes.get("/steps/{step_id}")
@scoped(tenant())
async def step_page(request: web.Request) -> web.Response:
    after = await stream_start(request)
    view = await _live_view(request)
    async with services(request).database.read() as conn:
        feed = await events.recent(conn, step_run_id=view["step"].id, limit=FEED)
        found = await findings_by_scope(conn, step_run_id=view["step"].id)
    return render(request, "console/step.html", after=after, feed=feed, findings=found, **view)


@routes.get("/steps/{step_id}/live")
@scoped(tenant())
async def step_live(request: web.Request) -> web.Response:
    return render(request, "console/_step_live.html", **await _live_view(request))


async def _live_view(request: web.Request) -> dict[str, Any]:
    async with services(request).database.snapshot() as conn:  # the step, its runs and logs of one moment
        step = await steps.get(conn, entity_id(request, "step_id"))
        run = await protocols.get(conn, step.protocol_run_id)
        project = await projects.get(conn, run.project_id)
        plan = await steps.list_for_protocol(conn, run.id)
        runs = await agent_runs.list_for_step(conn, step.id)
        logs = {r.id: agent_log(await agent_runs.read_log(conn, r.id)) for r in runs}
        verdicts = await events.recent(conn, step_run_id=step.id, type_prefix="qa.verdict", limit=2)
        commits = await events.recent(conn, step_run_id=step.id, type_prefix="step.committed", limit=1)
    return {
        "step": step,
        "run": run,
        "project": project,
        "agent_runs": runs,
        "logs": logs,
        "qa_reports": qa_reports([v.payload for v in verdicts]),
        "diff": commits[0].payload if commits else None,
        "actions": {a.value: ACTIONS[a] for a in allowed_step_actions(step, run.status, plan)},
    }


def qa_reports(newest_first: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports of the step's last QA: both opinions of a critical step, in order, or the one."""
    if not newest_first:
        return []
    if newest_first[0].get("opinion") == "second" and len(newest_first) > 1:
        return [newest_first[1], newest_first[0]]
    return newest_first[:1]


@routes.post("/steps/{step_id}/actions/{action}")
@scoped(tenant())
async def act(request: web.Request) -> web.Response:
    step_id = entity_id(request, "step_id")
    action = params(request).path["action"]
    values = await form(request)
    version = form_version(values)
    svc = services(request)
    if action == "run":
        await controls.run_step(svc, step_id)
    elif action == "retry":
        note = values.get("note", "")
        await controls.retry_step(svc, step_id, expected_version=version, note=note, by="console")
    elif action == "run_qa":
        await controls.run_qa(svc, step_id)
    elif action == "approve":
        note = values.get("note", "")[:2000]
        await quality.approve_step(svc, step_id, by="console", note=note, expected_version=version)
    else:
        raise NotFoundError(f"no action {action[:40]!r}")
    return done(request, f"/console/steps/{step_id}", f"{ACTIONS[StepAction(action)]}: done")
