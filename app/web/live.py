"""Following the event log live: new events as they are committed, for the SSE streams.

A follower sleeps until the change feed announces an event in its scope (one LISTEN connection per
process serves every follower), then reads what is new from the durable log in transaction order (see
app/store/events.py). Without the feed (it dropped, or none is given) it falls back to reading every
`IDLE_SECONDS`: nothing is lost either way, since the log, not the notification, is the source.

Events committed behind an older transaction that is still open are held back until it ends. That
transaction may write no event, so no notification would say when: while events wait, the follower
re-reads on a short, growing pause instead of sleeping until the next notification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from app.store import events as store
from app.store.changes import Change, ChangeFeed
from app.store.database import Database
from app.store.events import Placed, Position

BATCH = 200
IDLE_SECONDS = 1.0  # longest wait before an (empty) batch: lets a stream notice a gone client
WAITING_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.5)  # re-reads while events wait behind an open transaction


async def event_batches(
    database: Database,
    feed: ChangeFeed | None,
    *,
    after: Position,
    event_types: list[str] | None = None,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    organisation_id: int | None = None,
) -> AsyncIterator[list[Placed]]:
    """Batches of new events (in transaction order) after `after`, forever.

    An empty batch comes at least every IDLE_SECONDS, so the caller can check its client is still
    there; stop iterating to stop following.
    """
    wake = asyncio.Event()
    wake.set()

    def on_change(change: Change | None) -> None:
        if change is None or (change.table == "events" and project_id in (None, change.scope)):
            wake.set()

    unsubscribe = feed.subscribe(on_change) if feed is not None else None
    scope = {
        "project_id": project_id,
        "protocol_run_id": protocol_run_id,
        "step_run_id": step_run_id,
        "organisation_id": organisation_id,
    }
    position = after
    waits = 0  # reads in a row that found events held back
    try:
        while True:
            pause = WAITING_SECONDS[min(waits, len(WAITING_SECONDS)) - 1] if waits else IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), pause)
            if not wake.is_set() and not waits and feed is not None and feed.connected:
                yield []  # nothing new for certain: the feed would have said
                continue
            wake.clear()
            async with database.read() as conn:
                batch = await store.read_after(
                    conn, position, event_types=event_types or None, limit=BATCH, **scope
                )
            position = batch.end or position
            if len(batch.settled) == BATCH:
                wake.set()  # more are waiting
            waits = waits + 1 if batch.waiting else 0
            yield batch.settled
    finally:
        if unsubscribe is not None:
            unsubscribe()
