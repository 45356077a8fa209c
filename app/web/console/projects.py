"""Console: the projects list, onboarding, a project's page (runs, setup, settings) and its branches."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import EngineName
from app.domain.records import Project
from app.domain.scopes import Level, tenant
from app.domain.statuses import ProtocolStatus
from app.errors import ConflictError, InvalidInputError, spec_for
from app.git import mask_credentials
from app.services import planning, project_actions
from app.services import projects as project_service
from app.services.workspace import existing_repository
from app.store import events, jobs, projects, protocols
from app.web import views
from app.web.api.common import others_unnamed
from app.web.api.models import PageQuery, ProjectCreate, ProjectPatch, ProtocolCreate, ProtocolPageQuery
from app.web.api.registry import validate_input
from app.web.console.base import (
    done,
    entity_id,
    form,
    params,
    redirect,
    render,
    services,
    session,
    stream_start,
)
from app.web.scope import scoped

routes = web.RouteTableDef()
PAGE_OF_RUNS = tenant(multi=("status",))  # a project's page: its runs, filtered by several statuses
STAGES = ("planning", "execution", "qa")
ENGINES = [engine.value for engine in EngineName]
HOST_WAIT_SHOWN_AFTER = 10  # seconds a job of a one-machine project waits before the page says why


@routes.get("/")
@scoped(tenant(narrows=True))
async def home(request: web.Request) -> web.Response:
    scoped = session(request).project_id
    if scoped is not None:
        return redirect(f"/console/projects/{scoped}")
    after = await stream_start(request)
    return render(request, "console/projects.html", after=after, **await _projects_view(request))


@routes.get("/projects/live")
@scoped(tenant(narrows=True))
async def projects_live(request: web.Request) -> web.Response:
    return render(request, "console/_projects_table.html", **await _projects_view(request))


async def _projects_view(request: web.Request) -> dict[str, Any]:
    query = validate_input(PageQuery, _query(request, "cursor"), "query")
    page = await views.project_list(services(request), query, **params(request).narrowing())
    async with services(request).database.read() as conn:
        counts = await protocols.status_counts(conn, [p.id for p in page["items"]])
    return {"page": page, "counts": counts, "query_string": request.query_string}


@routes.get("/projects/new")
@scoped(tenant(Level.ORGANISATION, narrows=True))
async def new_project(request: web.Request) -> web.Response:
    return render(request, "console/project_new.html", values={}, engines=ENGINES, stages=STAGES, problem="")


@routes.post("/projects")
@scoped(tenant(Level.ORGANISATION, narrows=True))
async def create_project(request: web.Request) -> web.Response:
    """Register a project in the signed-in organisation (the operator's: the default one)."""
    values = await form(request)
    values.pop("csrf_token", None)
    organisation_id = params(request).narrowing().get("organisation_id")
    try:
        body = validate_input(ProjectCreate, values)
        with others_unnamed(request):
            project = await project_service.register_project(
                services(request), organisation_id=organisation_id, **body.model_dump(exclude_none=True)
            )
    except (InvalidInputError, ConflictError) as exc:  # the form again, filled in, with the reason
        if values.get("git_url"):  # but never a password sent back in a page
            values["git_url"] = mask_credentials(values["git_url"])
        return render(
            request,
            "console/project_new.html",
            status=spec_for(exc).http_status,
            values=values,
            engines=ENGINES,
            stages=STAGES,
            problem=exc.message,
        )
    return redirect(f"/console/projects/{project.id}")


@routes.get("/projects/{project_id}")
@scoped(PAGE_OF_RUNS)
async def project_page(request: web.Request) -> web.Response:
    after = await stream_start(request)
    return render(request, "console/project.html", after=after, **await _project_view(request))


@routes.get("/projects/{project_id}/live")
@scoped(PAGE_OF_RUNS)
async def project_live(request: web.Request) -> web.Response:
    return render(request, "console/_project_live.html", **await _project_view(request))


async def _project_view(request: web.Request) -> dict[str, Any]:
    project_id = entity_id(request, "project_id")
    svc = services(request)
    project = await views.project(svc, project_id)
    query = validate_input(ProtocolPageQuery, _query(request, "cursor", "q", many=("status",)), "query")
    page = await views.protocol_list(svc, project_id, query)
    async with svc.database.read() as conn:
        setup = await events.recent(conn, project_id=project_id, type_prefix="project.", limit=5)
        asked = await events.recent(conn, project_id=project_id, type_prefix="setup.clarifications", limit=1)
        host_wait = await _host_wait(conn, project)
    return {
        "host_wait": host_wait,
        "project": project,
        "page": page,
        "query": query,
        "statuses": list(ProtocolStatus),
        "setup_events": setup,
        "questions": _answerable(asked[0].payload.get("questions", [])) if asked else [],
        "engines": ENGINES,
        "stages": STAGES,
        "query_string": request.query_string,
    }


async def _host_wait(conn: AsyncConnection, project: Project) -> dict[str, int] | None:
    """Jobs of a project that lives on one machine, waiting for that machine's worker: said, never silent."""
    if project.host is None:
        return None
    count, seconds = await jobs.waiting_on_host(conn, project.host)
    # A job just deferred is taken within a poll by a live worker: only a longer wait is worth saying.
    return {"jobs": count, "seconds": int(seconds)} if count and seconds >= HOST_WAIT_SHOWN_AFTER else None


def _answerable(questions: list[Any]) -> list[dict[str, Any]]:
    """The setup questions the answer form offers: the settings it may change, and the pack's own."""
    return [
        {
            **{key: str(q.get(key, "")) for key in ("key", "question", "recommended")},
            "required": bool(q.get("required")),
        }
        for q in questions
        if isinstance(q, dict) and (q.get("key") in project_service.ANSWERABLE or q.get("source") == "policy")
    ]


def _query(request: web.Request, *names: str, many: tuple[str, ...] = ()) -> dict[str, Any]:
    """The query parameters a view reads, as the scope check read them (blank ones left out, so
    defaults apply)."""
    given = params(request)
    values: dict[str, Any] = {name: given.query[name] for name in names if given.query.get(name)}
    for name in many:
        chosen = [value for value in given.many.get(name, []) if value]
        if chosen:
            values[name] = chosen
    return values


@routes.post("/projects/{project_id}/clarifications")
@scoped(tenant())
async def answer(request: web.Request) -> web.Response:
    project_id = entity_id(request, "project_id")
    values = await form(request)
    answers = {
        key.removeprefix("answer."): value for key, value in values.items() if key.startswith("answer.")
    }
    await project_service.answer_clarifications(services(request), project_id, answers, by="console")
    return done(request, f"/console/projects/{project_id}", f"{len(answers)} answers saved")


@routes.post("/projects/{project_id}/settings")
@scoped(tenant())
async def change_settings(request: web.Request) -> web.Response:
    project_id = entity_id(request, "project_id")
    values = await form(request)
    version = values.pop("version", "")
    values.pop("csrf_token", None)
    body = validate_input(ProjectPatch, values)
    await project_service.change_project(
        services(request),
        project_id,
        body.model_dump(exclude_unset=True, mode="json"),
        expected_version=int(version) if version.isdigit() and len(version) < 18 else None,
    )
    return done(request, f"/console/projects/{project_id}", "settings saved")


@routes.post("/projects/{project_id}/protocols")
@scoped(tenant())
async def create_protocol(request: web.Request) -> web.Response:
    project_id = entity_id(request, "project_id")
    values = await form(request)
    values.pop("csrf_token", None)
    body = validate_input(ProtocolCreate, values)
    svc = services(request)
    choices = body.model_dump(exclude_none=True, exclude={"title", "description", "start"}, mode="json")
    run = await planning.create_protocol(
        svc, project_id, title=body.title, description=body.description, **choices
    )
    if body.start:
        run = await planning.start_protocol(svc, run.id)
    location = f"/console/protocols/{run.id}"
    if request.headers.get("HX-Request") == "true":
        return web.Response(status=204, headers={"HX-Redirect": location})
    return redirect(location)


@routes.get("/projects/{project_id}/branches")
@scoped(tenant())
async def branches(request: web.Request) -> web.Response:
    project = await _project(request)
    names = await existing_repository(services(request), project).list_remote_branches()
    return render(request, "console/branches.html", project=project, branches=names)


@routes.post("/projects/{project_id}/branches/delete")
@scoped(tenant())
async def delete_branch(request: web.Request) -> web.Response:
    project = await _project(request)
    values = await form(request)
    branch, confirm = values.get("branch", ""), values.get("confirm", "")
    if not branch or confirm != branch:
        raise InvalidInputError("type the branch name again to confirm the deletion", field="confirm")
    await project_actions.delete_branch(services(request), project.id, branch)
    return done(request, f"/console/projects/{project.id}/branches", f"branch {branch} deleted")


async def _project(request: web.Request) -> Project:
    async with services(request).database.read() as conn:
        return await projects.get(conn, entity_id(request, "project_id"))
