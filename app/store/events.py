"""The event log: append (inside the caller's transaction) and read in id order."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.events import NewEvent
from app.domain.records import Event
from app.logs import current_correlation_id
from app.store.rows import fetch_all, page_size, to_record
from app.store.tables import events


async def append(conn: AsyncConnection, event: NewEvent) -> Event:
    """Record `event`, tagged with the current correlation id, in the caller's transaction."""
    statement = (
        insert(events)
        .values(
            project_id=event.project_id,
            protocol_run_id=event.protocol_run_id,
            step_run_id=event.step_run_id,
            event_type=event.event_type,
            message=event.message,
            payload=event.payload,
            correlation_id=current_correlation_id(),
        )
        .returning(events)
    )
    return to_record(Event, (await conn.execute(statement)).one())


async def list_page(
    conn: AsyncConnection,
    *,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    event_types: Sequence[str] | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Event]:
    """Oldest first, within an optional scope and set of types; pass the last id seen as `after_id`."""
    query = select(events).order_by(events.c.id).limit(page_size(limit))
    query = _scoped(query, project_id, protocol_run_id, step_run_id)
    if event_types:
        query = query.where(events.c.event_type.in_(list(event_types)))
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    return await fetch_all(conn, query, Event)


def _scoped(
    query: Select, project_id: int | None, protocol_run_id: int | None, step_run_id: int | None
) -> Select:
    """`query` narrowed to the events of a project, run or step (each optional)."""
    for column, value in (
        (events.c.project_id, project_id),
        (events.c.protocol_run_id, protocol_run_id),
        (events.c.step_run_id, step_run_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


async def last_id(conn: AsyncConnection) -> int:
    """The newest event's id (0 when there is none): where a live stream starts."""
    return int(await conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)


async def recent(
    conn: AsyncConnection,
    *,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    type_prefix: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Event]:
    """Newest first, within an optional scope; `type_prefix` keeps e.g. every `step.` event."""
    query = select(events).order_by(events.c.id.desc()).limit(page_size(limit))
    query = _scoped(query, project_id, protocol_run_id, step_run_id)
    if type_prefix:
        escaped = type_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(events.c.event_type.like(escaped + "%", escape="\\"))
    if before_id is not None:
        query = query.where(events.c.id < before_id)
    return await fetch_all(conn, query, Event)
