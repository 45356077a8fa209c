"""The event log: append (inside the caller's transaction) and read in transaction order.

An event's id comes from a sequence when it is inserted, but its transaction may commit later than
one that took a higher id, so a reader of `id > cursor` would skip it. Each event is therefore stamped
with its transaction's id (`txid`), and readers that resume from a cursor are handed only events whose
transaction is below their snapshot's xmin: every transaction below it has finished, so no event can
still appear before the cursor. Order and cursor are (txid, id); `id` alone is not enough, since a
transaction that took its xid first may commit an event with a higher id before a later one commits a
lower id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, func, insert, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.acting import current_actor, name_current
from app.domain.actors import Actor, ActorKind
from app.domain.events import NewEvent
from app.domain.records import Event
from app.logs import current_correlation_id
from app.store.audit_table import append_audit
from app.store.rows import fetch_all, page_size, to_record
from app.store.tables import XID8, events, organisations, projects, protocol_runs


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """Where an event stands in the log: its transaction's id (the order transactions began writing),
    then its own id."""

    txid: int
    id: int


START = Position(0, 0)  # before every event


@dataclass(frozen=True, slots=True)
class Placed:
    """An event and its position (what a cursor pointing just after it holds)."""

    position: Position
    event: Event


@dataclass(frozen=True, slots=True)
class Batch:
    """What `read_after` found: events to hand out, and committed ones still held back."""

    settled: list[Placed]
    # Committed, in scope and after the cursor, but an older transaction is still open and may yet
    # commit an event before them: they come in a later read.
    waiting: list[Placed]

    @property
    def end(self) -> Position | None:
        """Where the next read resumes (None when nothing was handed out)."""
        return self.settled[-1].position if self.settled else None


async def append(conn: AsyncConnection, event: NewEvent) -> Event:
    """Record `event`, tagged with the current correlation id, in the caller's transaction; written
    for an operator action (an actor is set: app/acting.py), it names the actor and is copied to the
    audit trail."""
    if event.project_id is None:
        raise ValueError("an event of the log belongs to a project (use append_action)")
    actor = await acting_now(conn)
    payload = event.payload if actor is None else {**event.payload, "actor": actor.as_payload()}
    statement = (
        insert(events)
        .values(
            project_id=event.project_id,
            protocol_run_id=event.protocol_run_id,
            step_run_id=event.step_run_id,
            event_type=event.event_type,
            message=event.message,
            payload=payload,
            correlation_id=current_correlation_id(),
        )
        .returning(events)
    )
    written = to_record(Event, (await conn.execute(statement)).one())
    if actor is not None:
        await append_audit(conn, actor, replace(event, payload=payload), event_id=written.id)
    return written


async def append_action(conn: AsyncConnection, event: NewEvent) -> None:
    """Record an operator action: in the log when it is about a project, else in the audit trail
    only. Without an actor (work the service does itself) an action about no project leaves no row."""
    if event.project_id is not None:
        await append(conn, event)
        return
    actor = await acting_now(conn)
    if actor is not None:
        await append_audit(
            conn, actor, replace(event, payload={**event.payload, "actor": actor.as_payload()})
        )


async def acting_now(conn: AsyncConnection) -> Actor | None:
    """The current actor, its name looked up once per request when it is an organisation or project."""
    actor = current_actor()
    if actor is None or not actor.unnamed:
        return actor
    table = organisations if actor.kind is ActorKind.ORGANISATION else projects
    name = await conn.scalar(select(table.c.name).where(table.c.id == int(actor.id)))
    named = replace(actor, label=name or f"{actor.kind} {actor.id}")
    name_current(named)
    return named


async def read_after(
    conn: AsyncConnection,
    after: Position,
    correlation_id: str | None = None,
    until: Position | None = None,
    /,
    *,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    event_types: Sequence[str] | None = None,
    organisation_id: int | None = None,
    limit: int = 100,
) -> Batch:
    """Events after `after` (and up to `until`, when given) in transaction order, for a reader that
    will resume from the last one.

    The horizon is read in the same statement (so the same snapshot) as the events: an event of a
    transaction below it is visible now if it ever will be. With `correlation_id`, only the events
    recorded under it and those of the run that carries it.
    """
    query = _following(select(events), after, limit)
    query = _scoped(query, project_id, protocol_run_id, step_run_id, event_types, organisation_id)
    if until is not None:
        query = query.where(_key() <= _bound(until))
    if correlation_id is not None:
        # Stamped with it (the request, the run's jobs), or about the run that carries it.
        runs = select(protocol_runs.c.id).where(protocol_runs.c.correlation_id == correlation_id)
        query = query.where(
            or_(events.c.correlation_id == correlation_id, events.c.protocol_run_id.in_(runs))
        )
    return _batch((await conn.execute(query)).all())


async def read_log_after(
    conn: AsyncConnection, after: Position, *, limit: int = 100
) -> tuple[Batch, dict[int, int]]:
    """Every project's events after `after`, as `read_after` reads them, and the organisation of each
    one's project (by event id): for one reader that hands the log out to many tenants."""
    owned = select(events, projects.c.organisation_id.label("owner")).select_from(
        events.join(projects, projects.c.id == events.c.project_id)
    )
    rows = (await conn.execute(_following(owned, after, limit))).all()
    return _batch(rows), {row.id: row.owner for row in rows}


def _following(query: Select, after: Position, limit: int) -> Select:
    """`query` (over events) narrowed to the events after `after` in transaction order, each marked
    `settled` when its transaction is below the statement's horizon."""
    settled = (events.c.txid < select(_xmin()).scalar_subquery()).label("settled")
    return (
        query.add_columns(settled)
        .where(_key() > _bound(after))
        .order_by(events.c.txid, events.c.id)
        .limit(page_size(limit))
    )


def _batch(rows: Sequence[Any]) -> Batch:
    placed = [(row.settled, Placed(Position(row.txid, row.id), to_record(Event, row))) for row in rows]
    # Ordered by txid, so every settled event comes before every waiting one.
    return Batch([p for ok, p in placed if ok], [p for ok, p in placed if not ok])


async def horizon(conn: AsyncConnection) -> Position:
    """A cursor for "from now": before every event not yet visible to a reader starting now.

    It may repeat events that committed moments ago behind an older open transaction, but never
    skips one.
    """
    xmin = await conn.scalar(select(_xmin()))
    return Position(int(xmin or 0), 0)


async def position_of(conn: AsyncConnection, event_id: int) -> Position:
    """Event `event_id`'s position, for a client that holds a plain event id rather than a cursor.

    An id not stored (never committed, or its project deleted) stands for the newest stored event
    below it; with none, for the start.
    """
    row = (
        await conn.execute(
            select(events.c.txid, events.c.id)
            .where(events.c.id <= event_id)
            .order_by(events.c.id.desc())
            .limit(1)
        )
    ).first()
    return Position(row.txid, row.id) if row is not None else START


async def start_at(conn: AsyncConnection, given: Position | int | None, *, from_now: bool) -> Position:
    """The cursor a reader starts from: `given` (a position, or a plain event id), else the start of
    the log or, `from_now`, the horizon."""
    if isinstance(given, Position):
        return given
    if given is not None:
        return await position_of(conn, given)
    return await horizon(conn) if from_now else START


async def list_page(
    conn: AsyncConnection,
    *,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    event_types: Sequence[str] | None = None,
    limit: int = 100,
) -> list[Event]:
    """The oldest events visible now, in transaction order (to follow the log, use `read_after`)."""
    query = select(events).order_by(events.c.txid, events.c.id).limit(page_size(limit))
    query = _scoped(query, project_id, protocol_run_id, step_run_id, event_types)
    return await fetch_all(conn, query, Event)


async def recent(
    conn: AsyncConnection,
    *,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    type_prefix: str | None = None,
    before: Position | None = None,
    organisation_id: int | None = None,
    limit: int = 50,
) -> list[Event]:
    """Newest first in transaction order, within an optional scope; `type_prefix` keeps e.g. every `step.`
    event. Pass the last event's position as `before` for the page after (an initial rendering, not
    a feed to follow: that is `read_after`)."""
    query = select(events).order_by(events.c.txid.desc(), events.c.id.desc()).limit(page_size(limit))
    query = _scoped(query, project_id, protocol_run_id, step_run_id, organisation_id=organisation_id)
    if type_prefix:
        query = query.where(*type_prefixed(type_prefix))
    if before is not None:
        query = query.where(_key() < _bound(before))
    return await fetch_all(conn, query, Event)


def type_prefixed(prefix: str) -> tuple[ColumnElement, ...]:
    """Events whose type starts with `prefix`, as a range of the `event_type` index (the column
    compares byte by byte, "C" collation: a `LIKE 'x.%'` under the database's own would read every row)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:  # no character after it: the range has no upper end
        return (events.c.event_type >= prefix, events.c.event_type.startswith(prefix, autoescape=True))
    after = last + 1 if not 0xD800 <= last + 1 <= 0xDFFF else 0xE000  # never a lone surrogate
    return (events.c.event_type >= prefix, events.c.event_type < prefix[:-1] + chr(after))


def snapshot_xmin() -> ColumnElement:
    """The oldest transaction still running when the statement's snapshot was taken (a row of a
    transaction below it is visible now if it ever will be)."""
    return _xmin()


def after_position(txid: ColumnElement, row_id: ColumnElement, position: Position) -> ColumnElement:
    """Rows placed after `position` in (txid, id) order."""
    return tuple_(txid, row_id) > _bound(position)


def _xmin() -> ColumnElement:
    """The oldest transaction still running when the statement's snapshot was taken."""
    return func.pg_snapshot_xmin(func.pg_current_snapshot())


def _key() -> ColumnElement:
    return tuple_(events.c.txid, events.c.id)


def _bound(position: Position) -> ColumnElement:
    return tuple_(literal(position.txid, XID8), literal(position.id, BigInteger))


def _scoped(
    query: Select,
    project_id: int | None,
    protocol_run_id: int | None,
    step_run_id: int | None,
    event_types: Sequence[str] | None = None,
    organisation_id: int | None = None,
) -> Select:
    """`query` narrowed to the events of an organisation, project, run or step, and to some types
    (each optional)."""
    if event_types:
        query = query.where(events.c.event_type.in_(list(event_types)))
    if organisation_id is not None:
        owned = select(projects.c.id).where(projects.c.organisation_id == organisation_id)
        query = query.where(events.c.project_id.in_(owned))
    for column, value in (
        (events.c.project_id, project_id),
        (events.c.protocol_run_id, protocol_run_id),
        (events.c.step_run_id, step_run_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return query
