"""Reading the audit trail (the API's pages and `tasksgodzilla audit export`), and writing the
actions that belong to it alone (a console sign-in is not news for a project's event feed)."""

from __future__ import annotations

from app.acting import acting_as
from app.domain.actors import Actor
from app.domain.events import NewEvent
from app.domain.records import AuditEvent
from app.services.context import Services
from app.store import audit
from app.store import projects as project_store
from app.store.audit_table import append_audit
from app.store.events import START, Position, acting_now


async def audit_page(
    svc: Services, after: Position | None, where: audit.AuditFilter, *, limit: int
) -> tuple[list[AuditEvent], Position | None]:
    """Up to `limit` actions after `after` (None: from the start) and where the next page resumes
    (None when this one is empty)."""
    async with svc.database.read() as conn:
        placed = await audit.read_after(conn, after or START, where, limit=limit)
    return [row for _, row in placed], (placed[-1][0] if placed else None)


async def record_session(
    svc: Services,
    actor: Actor,
    kind: str,
    message: str,
    *,
    organisation_id: int | None = None,
    project_id: int | None = None,
) -> None:
    """A console session began or ended (`console.signed_in` / `console.signed_out`): audit trail only,
    under the organisation (a project token's: its project's, named in the payload)."""
    async with svc.database.transaction() as conn:
        with acting_as(actor):
            named = await acting_now(conn) or actor  # an organisation's or project's name looked up
        payload: dict[str, object] = {"actor": named.as_payload()}
        if project_id is not None:
            organisation_id = (await project_store.get(conn, project_id)).organisation_id
            payload["project_id"] = project_id
        event = NewEvent(
            project_id=None,  # not a project's event: it stays out of the project's feed
            organisation_id=organisation_id,
            event_type=kind,
            message=message,
            payload=payload,
        )
        await append_audit(conn, named, event)
