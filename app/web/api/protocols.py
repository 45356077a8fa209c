"""Protocol runs and their steps: create, read, list, and the operator's actions."""

from __future__ import annotations

from aiohttp import web

from app.domain.records import ProtocolRun, StepRun
from app.domain.scopes import tenant
from app.domain.statuses import ProtocolStatus
from app.errors import IllegalTransitionError, NotFoundError, StaleWriteError
from app.services import controls, planning, quality
from app.store import run_reads
from app.web import views
from app.web.api.common import if_match, services
from app.web.api.models import Approval, Critical, Page, ProtocolCreate, ProtocolPageQuery, Retry
from app.web.api.registry import Api, respond_page, respond_row
from app.web.idempotency import claim_of

api = Api()
ACTION_ERRORS = (404, 409)
IF_MATCH = ("If-Match",)


@api.route(
    "POST",
    "/projects/{project_id}/protocols",
    summary="Create a protocol run (and start it)",
    tag="protocols",
    scope=tenant(),
    body=ProtocolCreate,
    headers=("Idempotency-Key",),
    response=ProtocolRun,
    status=201,
    errors=(404, 409, 422),
)
async def create_protocol(request: web.Request, project_id: int, body: ProtocolCreate) -> ProtocolRun:
    svc = services(request)
    choices = body.model_dump(exclude_none=True, exclude={"title", "description", "start"}, mode="json")
    run = await planning.create_protocol(
        svc,
        project_id,
        title=body.title,
        description=body.description,
        idempotency=claim_of(request),
        **choices,
    )
    if not body.start or run.status is not ProtocolStatus.PENDING:
        return run
    try:
        # From the version just created (or found, on a retry whose first try did not start it): a
        # twin of this request may start it meanwhile, and it is never started twice.
        return await planning.start_protocol(svc, run.id, expected_version=run.version)
    except (StaleWriteError, IllegalTransitionError):
        return await views.protocol_run(svc, run.id)


@api.route(
    "GET",
    "/projects/{project_id}/protocols",
    summary="A project's protocol runs, newest first",
    tag="protocols",
    scope=tenant(),
    query=ProtocolPageQuery,
    response=Page[ProtocolRun],
    errors=(404,),
)
async def list_protocols(request: web.Request, project_id: int, query: ProtocolPageQuery) -> web.Response:
    # The hottest reads: rows to JSON through the driver (app/store/run_reads.py), no records.
    rows = await run_reads.page_rows(
        services(request).database,
        project_id,
        statuses=query.status,
        before_id=query.position(),
        limit=query.limit,
        search=query.q or None,
    )
    return respond_page(rows, query.limit)


@api.route(
    "GET",
    "/protocols/{protocol_id}",
    summary="One protocol run",
    tag="protocols",
    scope=tenant(),
    response=ProtocolRun,
    errors=(404,),
)
async def get_protocol(request: web.Request, protocol_id: int) -> web.Response:
    row = await run_reads.run_row(services(request).database, protocol_id)
    if row is None:
        raise NotFoundError(f"protocol run {protocol_id} not found")
    return respond_row(row)


@api.route(
    "GET",
    "/protocols/{protocol_id}/steps",
    summary="A protocol run's steps in plan order",
    tag="protocols",
    scope=tenant(),
    response=Page[StepRun],
    errors=(404,),
)
async def list_steps(request: web.Request, protocol_id: int) -> dict:
    return {"items": await views.step_list(services(request), protocol_id), "next_cursor": None}


@api.route(
    "GET",
    "/steps/{step_id}",
    summary="One step run",
    tag="steps",
    scope=tenant(),
    response=StepRun,
    errors=(404,),
)
async def get_step(request: web.Request, step_id: int) -> StepRun:
    return await views.step(services(request), step_id)


def _protocol_action(path: str, summary: str, action: object) -> None:
    async def act(request: web.Request, protocol_id: int) -> ProtocolRun:
        return await action(services(request), protocol_id, expected_version=if_match(request))  # type: ignore[operator]

    act.__name__ = path.rsplit("/", 1)[-1]
    api.route(
        "POST",
        path,
        summary=summary,
        tag="actions",
        scope=tenant(),
        response=ProtocolRun,
        errors=ACTION_ERRORS,
        headers=IF_MATCH,
    )(act)


_protocol_action(
    "/protocols/{protocol_id}/actions/start", "Plan the run, or start a planned one", planning.start_protocol
)
_protocol_action("/protocols/{protocol_id}/actions/pause", "Pause after the current step", controls.pause)
_protocol_action("/protocols/{protocol_id}/actions/resume", "Resume a paused or blocked run", controls.resume)
_protocol_action(
    "/protocols/{protocol_id}/actions/cancel", "Cancel the run and stop its agent", controls.cancel
)


@api.route(
    "POST",
    "/protocols/{protocol_id}/actions/run_next_step",
    summary="Queue the next pending step",
    tag="actions",
    scope=tenant(),
    response=StepRun,
    status=202,
    errors=ACTION_ERRORS,
)
async def run_next_step(request: web.Request, protocol_id: int) -> StepRun:
    return await controls.run_next_step(services(request), protocol_id)


@api.route(
    "POST",
    "/protocols/{protocol_id}/actions/open_pr",
    summary="Push the branch and open its PR/MR now",
    tag="actions",
    scope=tenant(),
    response=ProtocolRun,
    status=202,
    errors=ACTION_ERRORS,
)
async def open_pr(request: web.Request, protocol_id: int) -> ProtocolRun:
    return await controls.open_pr_now(services(request), protocol_id)


@api.route(
    "POST",
    "/steps/{step_id}/actions/run",
    summary="Queue a pending step",
    tag="actions",
    scope=tenant(),
    response=StepRun,
    status=202,
    errors=ACTION_ERRORS,
)
async def run_step(request: web.Request, step_id: int) -> StepRun:
    return await controls.run_step(services(request), step_id)


@api.route(
    "POST",
    "/steps/{step_id}/actions/run_qa",
    summary="Queue QA of a step",
    tag="actions",
    scope=tenant(),
    response=StepRun,
    status=202,
    errors=ACTION_ERRORS,
)
async def run_qa(request: web.Request, step_id: int) -> StepRun:
    return await controls.run_qa(services(request), step_id)


@api.route(
    "POST",
    "/steps/{step_id}/actions/retry",
    summary="Retry a failed or blocked step (a rejected one, or one given a note, is redone by its agent)",
    tag="actions",
    scope=tenant(),
    body=Retry,
    response=StepRun,
    errors=ACTION_ERRORS,
    headers=IF_MATCH,
)
async def retry(request: web.Request, step_id: int, body: Retry) -> StepRun:
    return await controls.retry_step(
        services(request), step_id, expected_version=if_match(request), note=body.note, by="api"
    )


@api.route(
    "POST",
    "/steps/{step_id}/actions/approve",
    summary="Pass a step by hand",
    tag="actions",
    scope=tenant(),
    body=Approval,
    response=StepRun,
    errors=ACTION_ERRORS,
    headers=IF_MATCH,
)
async def approve(request: web.Request, step_id: int, body: Approval) -> StepRun:
    return await quality.approve_step(
        services(request), step_id, by="api", note=body.note, expected_version=if_match(request)
    )


@api.route(
    "POST",
    "/steps/{step_id}/actions/mark_critical",
    summary="Mark a step critical: its QA takes a second opinion, and a disagreement waits for a person",
    tag="actions",
    scope=tenant(),
    body=Critical,
    response=StepRun,
    errors=ACTION_ERRORS,
    headers=IF_MATCH,
)
async def mark_critical(request: web.Request, step_id: int, body: Critical) -> StepRun:
    return await quality.mark_critical(
        services(request), step_id, critical=body.critical, by="api", expected_version=if_match(request)
    )
