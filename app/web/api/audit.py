"""The audit trail: every operator action the caller reaches, oldest first, paged by cursor like
/events (and handed out in the same transaction order), filtered by project, actor, kind and time.

The operator reads every action; an organisation's token its organisation's (its projects', and
actions on the organisation itself); a project's token its project's. Actions on a deleted project
stay here (the project's name is kept with them).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import AwareDatetime, Field

from app.domain.actors import ActorKind
from app.domain.records import AuditEvent
from app.domain.scopes import MAX_ID, tenant
from app.errors import InvalidInputError
from app.services.audit import audit_page
from app.store.audit import AuditFilter
from app.web.api.common import services
from app.web.api.models import Page, Strict, decode_event_cursor, encode_event_cursor
from app.web.api.registry import Api
from app.web.scope import resolved

api = Api()


class AuditQuery(Strict):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=100, description="The `next_cursor` of the previous page.")
    project: int | None = Field(
        None, ge=1, le=MAX_ID, description="A project's id (a deleted project's too: its actions stay)."
    )
    actor_kind: ActorKind | None = Field(None, description="Who acted: the kind of credential.")
    actor_id: str | None = Field(
        None,
        max_length=100,
        description="Who acted: the operator token's fingerprint, an organisation's or "
        "project's id, or the OS user of a local command.",
    )
    kind: str | None = Field(
        None, max_length=100, description="An event type or its start: `project.` keeps every project action."
    )
    since: AwareDatetime | None = Field(None, description="From this time (inclusive), with its time zone.")
    until: AwareDatetime | None = Field(None, description="Before this time, with its time zone.")


@api.route(
    "GET",
    "/audit",
    summary="Operator actions the caller reaches, oldest first: who did what, when, to what",
    tag="audit",
    scope=tenant(narrows=True),
    query=AuditQuery,
    response=Page[AuditEvent],
)
async def audit(request: web.Request, query: AuditQuery) -> dict:
    given = decode_event_cursor(query.cursor, field="cursor")
    if isinstance(given, int):  # a plain id: /events takes one, this trail's ids are its own
        raise InvalidInputError("the cursor is not one this API gave out", field="cursor")
    if query.since is not None and query.until is not None and query.until <= query.since:
        raise InvalidInputError("until must be after since", field="until")
    within = resolved(request).narrowing()
    where = AuditFilter(
        organisation_id=within.get("organisation_id"),
        project_id=within.get("project_id"),
        project=query.project,
        actor_kind=str(query.actor_kind) if query.actor_kind is not None else None,
        actor_id=query.actor_id,
        kind=query.kind,
        since=query.since,
        until=query.until,
    )
    rows, end = await audit_page(services(request), given, where, limit=query.limit)
    # Oldest first; the cursor of the last item always continues (new actions may come).
    return {"items": rows, "next_cursor": encode_event_cursor(end) if end else query.cursor}
