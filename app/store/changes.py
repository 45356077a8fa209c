"""The change feed: one LISTEN connection per process, telling subscribers which rows changed.

Migration 0006's triggers announce every committed write to projects, protocol runs, step runs and
events on one channel. Subscribers get a `Change` per row, or `None` when the feed lost (or regained)
its connection and so may have missed some: they must then assume anything changed. While the feed is
down it keeps reconnecting, with a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from app.logs import get_logger
from app.store.database import with_driver

log = get_logger(__name__)

CHANNEL = "tasksgodzilla_changes"
KEEPALIVE_SECONDS = 10.0  # a silently dropped connection is noticed within this
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Change:
    table: str
    id: int
    scope: int | None  # the row's project (runs, events, projects) or protocol run (steps)


Subscriber = Callable[[Change | None], None]


def parse_change(payload: str) -> Change | None:
    """`<table>:<id>:<scope>` as the trigger writes it; None for anything else."""
    table, _, rest = payload.partition(":")
    raw_id, _, raw_scope = rest.partition(":")
    if not table or not raw_id.isdigit():
        return None
    return Change(table, int(raw_id), int(raw_scope) if raw_scope.isdigit() else None)


class ChangeFeed:
    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        self._url = with_driver(url, None)
        self._connect_timeout = connect_timeout
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self._ready = asyncio.Event()  # set once the first LISTEN is in place

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` for every change; returns the function that stops it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        """Start listening; waits (up to `wait_seconds`) for the first connection, then goes on trying."""
        self._task = asyncio.create_task(self._run(), name="change-feed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _publish(self, change: Change | None) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(change)
            except Exception:  # one faulty subscriber must not starve the others
                log.exception("change subscriber failed")

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        change = parse_change(payload)
        if change is not None:
            self._publish(change)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
                failures = 0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("change feed disconnected", error=type(exc).__name__)
            if self.connected:
                self.connected = False
                self._publish(None)
            await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._url,
            timeout=self._connect_timeout,
            server_settings={"application_name": "tasksgodzilla-changes"},
        )
        closed = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: closed.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            self.connected = True
            self._ready.set()
            self._publish(None)  # what changed while we were away is unknown
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), KEEPALIVE_SECONDS)
                if not closed.is_set():
                    await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
        finally:
            conn.terminate()
