"""Following the event log live, for every SSE stream of the process at once: the hub.

One reader per process (`LiveHub`) sleeps until the change feed announces an event (one LISTEN
connection per process: app/store/changes.py), reads what is new from the durable log once, in
transaction order (app/store/events.py), and hands each stream the events of its scope (`Interest`:
an organisation, a project, a run, a step, some types). Without the feed (it dropped, or none is
given) the hub reads every `IDLE_SECONDS`: nothing is lost either way, since the log, not the
notification, is the source. The hub runs while some stream follows it.

It keeps the last `TAIL` events it read, so a stream that starts (or resumes with Last-Event-ID) a
little in the past is served from memory; one older than the tail first reads its own scope from
the database up to where the tail begins. A stream that falls `MAX_PENDING` events behind (its
client reads slowly) rejoins the same way, from its last event.

Events committed behind an older transaction that is still open are held back until it ends. That
transaction may write no event, so no notification would say when: while events wait, the hub
re-reads on a short, growing pause instead of sleeping until the next notification.

What a stream sends for an event (its SSE message) is built once per event and shared (`Entry.frame`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from app.logs import get_logger
from app.store import events as store
from app.store.changes import Change, ChangeFeed
from app.store.database import Database
from app.store.events import Placed, Position

log = get_logger(__name__)

BATCH = 500  # events per read (the page limit of the store)
TAIL = 2000  # events the hub keeps for streams that start or resume a little in the past
MAX_PENDING = 5000  # events a slow stream may have waiting before it rejoins from the database
IDLE_SECONDS = 1.0  # longest wait before an (empty) batch: lets a stream notice a gone client
WAITING_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.5)  # re-reads while events wait behind an open transaction
READ_GAP_SECONDS = 0.02  # shortest time between two reads: events coming faster go out together


@dataclass(frozen=True, slots=True)
class Interest:
    """The events one stream sends: each field narrows (None: any); the scope check chose them."""

    organisation_id: int | None = None
    project_id: int | None = None
    protocol_run_id: int | None = None
    step_run_id: int | None = None
    event_types: frozenset[str] = frozenset()
    type_prefix: str | None = None

    def covers(self, entry: Entry) -> bool:
        event = entry.placed.event
        return (
            (self.project_id is None or event.project_id == self.project_id)
            and (self.protocol_run_id is None or event.protocol_run_id == self.protocol_run_id)
            and (self.step_run_id is None or event.step_run_id == self.step_run_id)
            and (self.organisation_id is None or entry.organisation_id == self.organisation_id)
            and (not self.event_types or event.event_type in self.event_types)
            and (not self.type_prefix or event.event_type.startswith(self.type_prefix))
        )


@dataclass(eq=False, slots=True)
class Entry:
    """An event as the hub hands it out, with its project's organisation (None when its reader
    narrowed by scope already) and the messages built for it so far."""

    placed: Placed
    organisation_id: int | None = None
    frames: dict[str, bytes] = field(default_factory=dict)

    @property
    def position(self) -> Position:
        return self.placed.position

    def frame(self, kind: str, build: Callable[[Placed], bytes]) -> bytes:
        """The `kind` message for this event: built by the first stream that asks, shared after."""
        built = self.frames.get(kind)
        if built is None:
            built = self.frames[kind] = build(self.placed)
        return built


class _Subscriber:
    """One stream joined to the hub: events of its interest after `after`, waiting to be sent."""

    __slots__ = ("after", "interest", "overflowed", "pending", "wake")

    def __init__(self, interest: Interest, after: Position) -> None:
        self.interest = interest
        self.after = after  # the last event handed to the stream (or where it started)
        self.pending: list[Entry] = []
        self.overflowed = False
        self.wake = asyncio.Event()

    def wants(self, entry: Entry) -> bool:
        return entry.position > self.after and self.interest.covers(entry)

    def offer(self, covered: list[Entry]) -> None:
        """Events of its interest (`covered`, in order), of which it keeps those after `after`."""
        found = (
            covered
            if not covered or covered[0].position > self.after
            else [entry for entry in covered if entry.position > self.after]
        )
        if found:
            self.pending += found
            if len(self.pending) > MAX_PENDING:
                self.pending.clear()
                self.overflowed = True
            self.wake.set()

    def take(self) -> list[Entry]:
        taken, self.pending = self.pending, []
        self.wake.clear()
        if taken:
            self.after = taken[-1].position
        return taken


class LiveHub:
    """The process's one reader of new events, shared by every stream."""

    def __init__(self, database: Database, feed: ChangeFeed | None) -> None:
        self._database = database
        self._feed = feed
        self._subscribers: set[_Subscriber] = set()
        self._followers = 0  # streams following (joined, or catching up to the tail)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        # Every event in (floor, head] is in the tail, and none can still appear at or before head.
        self._tail: deque[Entry] = deque()
        self._floor = self._head = store.START
        self.reads = 0  # the hub's reads of the log (figures for benchmarks and tests)
        if feed is not None:
            feed.subscribe(self._on_change)

    @property
    def joined(self) -> int:
        """Streams joined to the hub (not catching up from the database)."""
        return len(self._subscribers)

    def _on_change(self, change: Change | None) -> None:
        if change is None or change.table == "events":
            self._wake.set()

    async def follow(self, interest: Interest, *, after: Position) -> AsyncGenerator[list[Entry]]:
        """Batches of new events of `interest` after `after`, in transaction order, forever.

        An empty batch comes at least every IDLE_SECONDS, so the caller can check its client is still
        there; stop iterating (and close the iterator) to stop following.
        """
        self._followers += 1
        subscriber: _Subscriber | None = None
        position = after
        try:
            while True:
                self._start()
                while not self._ready.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._ready.wait(), IDLE_SECONDS)
                    yield []
                while position < self._floor:
                    found, position = await self._read_scope(interest, position)
                    yield found
                if self._task is None:
                    continue  # the hub stopped meanwhile (it failed): start it again
                # The tail now covers everything after `position`: join, without a pause in between.
                subscriber = _Subscriber(interest, position)
                backlog = [entry for entry in self._tail if subscriber.wants(entry)]
                if backlog:
                    subscriber.after = backlog[-1].position
                self._subscribers.add(subscriber)
                yield backlog
                while not subscriber.overflowed:
                    await subscriber.wake.wait()
                    yield subscriber.take()
                # It fell behind (or the hub stopped): it rejoins from its last event.
                self._subscribers.discard(subscriber)
                position = subscriber.after
        finally:
            if subscriber is not None:
                self._subscribers.discard(subscriber)
            self._followers -= 1

    async def _read_scope(self, interest: Interest, position: Position) -> tuple[list[Entry], Position]:
        """Events of `interest` from `position` towards the start of the tail, read from the database,
        and where the next read resumes."""
        until = self._floor
        async with self._database.read() as conn:
            batch = await store.read_after(
                conn,
                position,
                None,
                until,
                organisation_id=interest.organisation_id,
                project_id=interest.project_id,
                protocol_run_id=interest.protocol_run_id,
                step_run_id=interest.step_run_id,
                limit=BATCH,
            )
        # Events up to the floor are final (every one settled), so a short batch is all there is.
        full = len(batch.settled) + len(batch.waiting) == BATCH or bool(batch.waiting)
        entries = [Entry(placed, interest.organisation_id) for placed in batch.settled]
        return [entry for entry in entries if interest.covers(entry)], (
            batch.end or position
        ) if full else until

    def _start(self) -> None:
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            await self._begin()
            await self._follow_log()
        finally:
            # No stream left (or it failed, or shuts down): forget the tail; streams still joined
            # rejoin from their last event, and the next start is afresh.
            self._task = None
            self._tail.clear()
            for subscriber in self._subscribers:
                subscriber.overflowed = True
                subscriber.wake.set()
            self._subscribers.clear()

    async def _begin(self) -> None:
        """Start at the horizon: every event before it is final, and the tail (empty) covers the rest."""
        failures = 0
        while self._followers:
            try:
                async with self._database.read() as conn:
                    self._floor = self._head = await store.horizon(conn)
                self._ready.set()
                return
            except Exception:
                log.exception("live hub cannot read the horizon")
                await asyncio.sleep(WAITING_SECONDS[min(failures, len(WAITING_SECONDS) - 1)] * 4)
                failures += 1

    async def _follow_log(self) -> None:
        loop = asyncio.get_running_loop()
        waits = 0  # reads in a row that found events held back
        ticked = last_read = loop.time()
        while self._followers:
            pause = WAITING_SECONDS[min(waits, len(WAITING_SECONDS)) - 1] if waits else IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            if loop.time() - ticked >= IDLE_SECONDS:
                ticked = loop.time()
                for subscriber in self._subscribers:
                    subscriber.wake.set()  # an empty batch: the stream checks its client
            connected = self._feed is not None and self._feed.connected
            if not self._wake.is_set() and not waits and connected:
                continue  # nothing new for certain: the feed would have said
            if (gap := READ_GAP_SECONDS - (loop.time() - last_read)) > 0:
                await asyncio.sleep(gap)
            self._wake.clear()
            last_read = loop.time()
            try:
                batch = await self._read()
            except Exception:
                log.exception("live hub read failed")
                waits = min(waits + 1, len(WAITING_SECONDS))
                continue
            if len(batch.settled) == BATCH:
                self._wake.set()  # more are waiting
            waits = waits + 1 if batch.waiting else 0

    async def _read(self) -> store.Batch:
        """Read what is new once, keep it in the tail, and offer it to every joined stream."""
        async with self._database.read() as conn:
            batch, owners = await store.read_log_after(conn, self._head, limit=BATCH)
        self.reads += 1
        if not batch.settled:
            return batch
        entries = [Entry(placed, owners.get(placed.event.id)) for placed in batch.settled]
        self._head = entries[-1].position
        self._tail.extend(entries)
        while len(self._tail) > TAIL:
            self._floor = self._tail.popleft().position
        covered: dict[Interest, list[Entry]] = {}  # streams that want the same, filtered once
        for subscriber in list(self._subscribers):
            interest = subscriber.interest
            if (found := covered.get(interest)) is None:
                found = covered[interest] = [entry for entry in entries if interest.covers(entry)]
            subscriber.offer(found)
        return batch
