"""Reading the audit trail, in transaction order as the event log is read (app/store/events.py says
why (txid, id)); rows are written with the events they copy (app/store/audit_table.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import AuditEvent
from app.store.audit_table import audit_events
from app.store.events import Position, after_position, snapshot_xmin
from app.store.rows import page_size, to_record


@dataclass(frozen=True)
class AuditFilter:
    """What a reader asks for (each optional): whose reach (`organisation_id`, `project_id`: the
    caller's), which `project`, which actor, which kinds (a prefix of the event type), which time."""

    organisation_id: int | None = None
    project_id: int | None = None
    project: int | None = None
    actor_kind: str | None = None
    actor_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def read_after(
    conn: AsyncConnection, after: Position, where: AuditFilter, *, limit: int
) -> list[tuple[Position, AuditEvent]]:
    """Audit rows after `after`, oldest first, only those every older transaction has settled."""
    query = (
        select(audit_events)
        .where(after_position(audit_events.c.txid, audit_events.c.id, after))
        .where(audit_events.c.txid < snapshot_xmin())
        .order_by(audit_events.c.txid, audit_events.c.id)
        .limit(page_size(limit))
    )
    rows = (await conn.execute(_filtered(query, where))).all()
    return [(Position(row.txid, row.id), to_record(AuditEvent, row)) for row in rows]


def _filtered(query: Select, where: AuditFilter) -> Select:
    table = audit_events.c
    for column, value in (
        (table.organisation_id, where.organisation_id),
        (table.project_id, where.project_id),
        (table.project_id, where.project),
        (table.actor_kind, where.actor_kind),
        (table.actor_id, where.actor_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.kind:
        escaped = where.kind.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(table.event_type.like(escaped + "%", escape="\\"))
    if where.since is not None:
        query = query.where(table.created_at >= where.since)
    if where.until is not None:
        query = query.where(table.created_at < where.until)
    return query
