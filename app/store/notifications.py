"""Notification channels, deliveries and the scan cursor (tables in app/store/notification_tables.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import Event
from app.store.events import Position
from app.store.jobs import QUEUE
from app.store.notification_tables import notification_channels, notification_cursor, notification_deliveries
from app.store.rows import to_record
from app.store.tables import events


@dataclass(frozen=True)
class Channel:
    """A channel as stored: its URL and secret still encrypted."""

    id: int
    project_id: int
    name: str
    channel_type: str
    kinds: list[str]
    host: str | None
    url_ciphertext: str | None
    secret_ciphertext: str | None
    recipients: list[str] | None
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    channel_id: int
    event_id: int
    kind: str
    status: str  # pending, sent or failed
    attempts: int
    last_error: str | None


def _channel(row: object) -> Channel:
    return Channel(**{name: getattr(row, name) for name in Channel.__dataclass_fields__})


def _delivery(row: object) -> Delivery:
    return Delivery(**{name: getattr(row, name) for name in Delivery.__dataclass_fields__})


async def add_channel(conn: AsyncConnection, **values: object) -> Channel:
    row = (
        await conn.execute(notification_channels.insert().values(**values).returning(notification_channels))
    ).one()
    return _channel(row)


async def channel_named(conn: AsyncConnection, project_id: int, name: str) -> Channel | None:
    query = select(notification_channels).where(
        notification_channels.c.project_id == project_id, notification_channels.c.name == name
    )
    row = (await conn.execute(query)).first()
    return _channel(row) if row is not None else None


async def channel(conn: AsyncConnection, channel_id: int) -> Channel | None:
    row = (
        await conn.execute(select(notification_channels).where(notification_channels.c.id == channel_id))
    ).first()
    return _channel(row) if row is not None else None


async def channels_of(conn: AsyncConnection, project_ids: Sequence[int]) -> list[Channel]:
    """The channels of these projects, oldest first."""
    if not project_ids:
        return []
    query = (
        select(notification_channels)
        .where(notification_channels.c.project_id.in_(list(set(project_ids))))
        .order_by(notification_channels.c.id)
    )
    return [_channel(row) for row in (await conn.execute(query)).all()]


async def delete_channel(conn: AsyncConnection, project_id: int, channel_id: int) -> bool:
    statement = delete(notification_channels).where(
        notification_channels.c.id == channel_id, notification_channels.c.project_id == project_id
    )
    return bool((await conn.execute(statement)).rowcount)


async def ensure_cursor(conn: AsyncConnection, start: Position) -> None:
    """Make the scan's cursor at `start` unless it exists (the first channel's creation makes it, so
    the scan starts with the events recorded after it)."""
    await conn.execute(
        insert(notification_cursor)
        .values(id=1, txid=start.txid, event_id=start.id)
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def locked_cursor(conn: AsyncConnection, start: Position) -> Position:
    """The scan's cursor, locked until the transaction ends (two scans never route the same events);
    made at `start` when there is none yet."""
    await ensure_cursor(conn, start)
    query = select(notification_cursor).where(notification_cursor.c.id == 1).with_for_update()
    row = (await conn.execute(query)).one()
    return Position(row.txid, row.event_id)


async def move_cursor(conn: AsyncConnection, to: Position) -> None:
    await conn.execute(
        update(notification_cursor)
        .where(notification_cursor.c.id == 1)
        .values(txid=to.txid, event_id=to.id, updated_at=func.now())
    )


async def add_deliveries(conn: AsyncConnection, rows: Sequence[tuple[int, int, str]]) -> list[int]:
    """One delivery per (channel id, event id, kind) not yet there; the ids of those added."""
    if not rows:
        return []
    statement = (
        insert(notification_deliveries)
        .values([{"channel_id": c, "event_id": e, "kind": k} for c, e, k in rows])
        .on_conflict_do_nothing(index_elements=["channel_id", "event_id"])
        .returning(notification_deliveries.c.id)
    )
    return [row.id for row in (await conn.execute(statement)).all()]


async def delivery(conn: AsyncConnection, delivery_id: int, *, lock: bool = False) -> Delivery | None:
    query = select(notification_deliveries).where(notification_deliveries.c.id == delivery_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return _delivery(row) if row is not None else None


async def deliveries_of(conn: AsyncConnection, channel_id: int) -> list[Delivery]:
    query = (
        select(notification_deliveries)
        .where(notification_deliveries.c.channel_id == channel_id)
        .order_by(notification_deliveries.c.id)
    )
    return [_delivery(row) for row in (await conn.execute(query)).all()]


async def forget_finished_before(conn: AsyncConnection, before: datetime) -> int:
    """Deliveries sent or failed for good before `before` go (their events stay in the log); how many.
    Pending ones stay whatever their age: their job may still try them."""
    gone = await conn.execute(
        delete(notification_deliveries).where(
            notification_deliveries.c.status.in_(("sent", "failed")),
            notification_deliveries.c.updated_at < before,
        )
    )
    return int(gone.rowcount or 0)


async def record_attempt(conn: AsyncConnection, delivery_id: int, *, status: str, error: str | None) -> None:
    """One more attempt, its outcome (`sent`, `pending` to try again, `failed` for good)."""
    await conn.execute(
        update(notification_deliveries)
        .where(notification_deliveries.c.id == delivery_id)
        .values(
            status=status,
            attempts=notification_deliveries.c.attempts + 1,
            last_error=error,
            sent_at=func.now() if status == "sent" else None,
            updated_at=func.now(),
        )
    )


async def event(conn: AsyncConnection, event_id: int) -> Event | None:
    """The event a delivery is about (None when its project, and so its log, was deleted)."""
    row = (await conn.execute(select(events).where(events.c.id == event_id))).first()
    return to_record(Event, row) if row is not None else None


# The delivery jobs of many deliveries in one statement (as app/store/jobs.py defers one: in the
# caller's transaction, so a delivery and its job commit together). They go to the shared queue:
# sending needs no project's disk.
_DEFER_DELIVERIES = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "SELECT :queue, :task, 0, 'notification:' || id, 'notification:' || id, "
    "jsonb_build_object('delivery_id', id) FROM unnest(CAST(:ids AS bigint[])) AS id "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING"
)


async def defer_deliveries(conn: AsyncConnection, delivery_ids: Sequence[int], *, task: str) -> None:
    """Queue one `task` job per delivery, in the caller's transaction."""
    if delivery_ids:
        await conn.execute(_DEFER_DELIVERIES, {"queue": QUEUE, "task": task, "ids": list(delivery_ids)})
