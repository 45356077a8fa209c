"""Policy findings of a project, a protocol run or a step: the `policy.finding` events, as findings.

Paged like the events they are (oldest first, in transaction order, by cursor); a protocol run's list
holds its steps' findings too, a project's those of all its runs.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.findings import Finding
from app.domain.scopes import tenant
from app.services.findings import FINDING_EVENT
from app.web.api.events import settled_batch
from app.web.api.models import Page, PageQuery, decode_event_cursor, encode_event_cursor
from app.web.api.registry import Api

api = Api()


class FindingsQuery(PageQuery):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(
        None, max_length=100, description="The `next_cursor` of the previous page (findings are events)."
    )


class RecordedFinding(BaseModel):
    """A finding as recorded: the event that holds it, and whose it is."""

    event_id: int
    created_at: datetime
    project_id: int
    protocol_run_id: int | None
    step_run_id: int | None
    finding: Finding


async def _page(request: web.Request, query: FindingsQuery, **scope: int) -> dict:
    start = decode_event_cursor(query.cursor, field="cursor")
    batch = await settled_batch(request, start, [FINDING_EVENT], query.limit, **scope)
    items = [
        RecordedFinding(
            event_id=event.id,
            created_at=event.created_at,
            project_id=event.project_id,
            protocol_run_id=event.protocol_run_id,
            step_run_id=event.step_run_id,
            finding=Finding.model_validate(event.payload["finding"]),
        )
        for event in (placed.event for placed in batch.settled)
    ]
    return {"items": items, "next_cursor": encode_event_cursor(batch.end) if batch.end else query.cursor}


@api.route(
    "GET",
    "/projects/{project_id}/policy/findings",
    summary="A project's policy findings (onboarding, and those of its runs and steps), oldest first",
    tag="policy",
    scope=tenant(),
    query=FindingsQuery,
    response=Page[RecordedFinding],
    errors=(404,),
)
async def project_findings(request: web.Request, project_id: int, query: FindingsQuery) -> dict:
    return await _page(request, query, project_id=project_id)


@api.route(
    "GET",
    "/protocols/{protocol_id}/policy/findings",
    summary="A protocol run's policy findings (its plan's and its steps'), oldest first",
    tag="policy",
    scope=tenant(),
    query=FindingsQuery,
    response=Page[RecordedFinding],
    errors=(404,),
)
async def protocol_findings(request: web.Request, protocol_id: int, query: FindingsQuery) -> dict:
    return await _page(request, query, protocol_run_id=protocol_id)


@api.route(
    "GET",
    "/steps/{step_id}/policy/findings",
    summary="A step run's policy findings, oldest first",
    tag="policy",
    scope=tenant(),
    query=FindingsQuery,
    response=Page[RecordedFinding],
    errors=(404,),
)
async def step_findings(request: web.Request, step_id: int, query: FindingsQuery) -> dict:
    return await _page(request, query, step_run_id=step_id)
