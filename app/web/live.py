"""Following the event log live: new events as they are committed, for the SSE streams.

A follower sleeps until the change feed announces an event in its scope (one LISTEN connection per
process serves every follower), then reads what is new from the durable log in id order. Without
the feed (it dropped, or none is given) it falls back to reading every `IDLE_SECONDS`: nothing is
lost either way, since the log, not the notification, is the source.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from app.domain.records import Event
from app.store import events as store
from app.store.changes import Change, ChangeFeed
from app.store.database import Database

BATCH = 200
IDLE_SECONDS = 1.0  # longest wait before an (empty) batch: lets a stream notice a gone client


async def event_batches(
    database: Database,
    feed: ChangeFeed | None,
    *,
    after_id: int | None,
    event_types: list[str] | None = None,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
) -> AsyncIterator[list[Event]]:
    """Batches of new events (oldest first) after `after_id` (None: from now), forever.

    An empty batch comes at least every IDLE_SECONDS, so the caller can check its client is still
    there; stop iterating to stop following.
    """
    wake = asyncio.Event()
    wake.set()

    def on_change(change: Change | None) -> None:
        if change is None or (change.table == "events" and project_id in (None, change.scope)):
            wake.set()

    unsubscribe = feed.subscribe(on_change) if feed is not None else None
    scope = {"project_id": project_id, "protocol_run_id": protocol_run_id, "step_run_id": step_run_id}
    try:
        if after_id is None:
            async with database.read() as conn:
                after_id = await store.last_id(conn)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), IDLE_SECONDS)
            if not wake.is_set() and feed is not None and feed.connected:
                yield []  # nothing new for certain: the feed would have said
                continue
            wake.clear()
            async with database.read() as conn:
                batch = await store.list_page(
                    conn, event_types=event_types or None, after_id=after_id, limit=BATCH, **scope
                )
            if batch:
                after_id = batch[-1].id
                if len(batch) == BATCH:
                    wake.set()  # more are waiting
            yield batch
    finally:
        if unsubscribe is not None:
            unsubscribe()


async def follow_events(
    database: Database,
    feed: ChangeFeed | None = None,
    *,
    after_id: int | None,
    event_types: list[str] | None = None,
    **scope: int | None,
) -> AsyncIterator[Event]:
    """New events one by one (see `event_batches`; prefer it where a gone client must be noticed)."""
    async for batch in event_batches(database, feed, after_id=after_id, event_types=event_types, **scope):
        for event in batch:
            yield event
