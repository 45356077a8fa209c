"""Following work as it happens: each new event as one line, and a live timer while an agent runs.

Following is polling the event log from a cursor every POLL_SECONDS: events are durable and handed
out in transaction order, so any process (this one, `serve`, a worker elsewhere) may be the one producing
them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

from app.cli.common import Session, printable
from app.domain.records import Event, ProtocolRun, StepRun
from app.services.context import Services
from app.store import events, protocols, steps
from app.store.events import START, Placed, Position

POLL_SECONDS = 0.3
PAGE = 500
SPINNER = "|/-\\"


def event_line(event: Event) -> str:
    """`12:04:31  step.completed         step run 7: needs_qa → completed (QA pass)`; a message of
    several lines (git's errors) goes on in lines indented under its first, control characters escaped."""
    when = event.created_at.astimezone().strftime("%H:%M:%S")
    head = f"{when}  {event.event_type:<22} "
    first, *more = event.message.replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n".join([head + printable(first), *(" " * len(head) + printable(line) for line in more)])


def event_json(event: Event) -> str:
    return json.dumps(event.model_dump(mode="json"), ensure_ascii=False)


def setup_outcome(event: Event) -> str | None:
    """How a project's setup ended, if `event` says it did: ready, failed, or awaiting_answers."""
    if event.event_type == "project.ready":
        return "ready"
    if event.event_type == "project.setup_failed":
        return "failed"
    if event.event_type == "setup.clarifications" and event.payload.get("blocking"):
        return "awaiting_answers"
    return None


def elapsed_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Console:
    """Lines on stdout and, on a terminal only, one status line under them that rewrites itself."""

    def __init__(self, *, live: bool | None = None) -> None:
        self.live = sys.stdout.isatty() if live is None else live
        self._status_shown = False

    def line(self, text: str) -> None:
        self.clear()
        click.echo(text)

    def status(self, text: str) -> None:
        if self.live:
            click.echo(f"\r{text}\x1b[K", nl=False)
            self._status_shown = True

    def clear(self) -> None:
        if self._status_shown:
            click.echo("\r\x1b[K", nl=False)
            self._status_shown = False


@dataclass(frozen=True)
class RunningAgent:
    stage: str
    started_at: datetime


@dataclass
class AgentTracker:
    """Agents between their `agent.started` and `agent.finished` events, by agent run id."""

    running: dict[int, RunningAgent] = field(default_factory=dict)

    def see(self, event: Event) -> None:
        agent_run_id = event.payload.get("agent_run_id")
        if not isinstance(agent_run_id, int):
            return
        if event.event_type == "agent.started":
            stage = str(event.payload.get("stage", "an"))
            self.running[agent_run_id] = RunningAgent(stage, event.created_at)
        elif event.event_type == "agent.finished":
            self.running.pop(agent_run_id, None)

    def status(self, now: datetime, tick: int) -> str | None:
        """`/ execution agent running 12s`, or None when no agent runs."""
        if not self.running:
            return None
        agents = ", ".join(
            f"{agent.stage} agent running {elapsed_text((now - agent.started_at).total_seconds())}"
            for agent in self.running.values()
        )
        return f"{SPINNER[tick % len(SPINNER)]} {agents}"


@dataclass
class Follower:
    """Where a follow stands (the position of the last event seen), what it prints, and how."""

    console: Console
    as_json: bool = False
    types: frozenset[str] = frozenset()
    position: Position = START
    tracker: AgentTracker = field(default_factory=AgentTracker)
    ticks: int = 0

    def show(self, batch: Iterable[Event]) -> None:
        """Print the events (those of the chosen types) and note which agents run."""
        for event in batch:
            self.tracker.see(event)
            if not self.types or event.event_type in self.types:
                self.console.line(event_json(event) if self.as_json else event_line(event))

    def skip(self, batch: Iterable[Event]) -> None:
        """Note which agents run, printing nothing (history before the follow began)."""
        for event in batch:
            self.tracker.see(event)

    def tick(self) -> None:
        """Redraw the live line: which agents run, for how long."""
        if self.as_json:
            return
        self.ticks += 1
        text = self.tracker.status(datetime.now(UTC), self.ticks)
        if text is None:
            self.console.clear()
        else:
            self.console.status(text)


async def read_new(
    svc: Services,
    follower: Follower,
    scope: dict[str, Any],
    *,
    project_level: bool = False,
    last: bool = False,
) -> list[Event]:
    """Every event in `scope` after the follower's mark, which moves past them.

    Events committed behind a transaction still open come in a later read, unless this is the `last`
    read (nothing will follow it): then every committed one comes now. `project_level` keeps only
    events about the project itself (not about one of its runs).
    """
    found: list[Placed] = []
    while True:
        async with svc.database.read() as conn:
            batch = await events.read_after(conn, follower.position, **scope, limit=PAGE)
        page = batch.settled + batch.waiting if last else batch.settled
        if page:
            follower.position = page[-1].position
        found += [p for p in page if not project_level or p.event.protocol_run_id is None]
        if len(batch.settled) + len(batch.waiting) < PAGE:
            return [p.event for p in found]


async def read_run(svc: Services, run_id: int) -> tuple[ProtocolRun, list[StepRun]]:
    async with svc.database.snapshot() as conn:  # the run and its steps as of one moment
        return await protocols.get(conn, run_id), await steps.list_for_protocol(conn, run_id)


async def follow_protocol(
    session: Session,
    run_id: int,
    follower: Follower,
    done: Callable[[ProtocolRun, list[StepRun]], Awaitable[bool]],
) -> tuple[ProtocolRun, list[StepRun]]:
    """Print the run's new events until `await done(run, steps)`; the run and steps as they were then."""
    svc = session.services
    session.start_worker()
    while True:
        session.check_worker()
        # Status first, events second: the events of the status read are committed with it.
        run, plan = await read_run(svc, run_id)
        finished = await done(run, plan)
        follower.show(await read_new(svc, follower, {"protocol_run_id": run_id}, last=finished))
        if finished:
            follower.console.clear()
            return run, plan
        follower.tick()
        await asyncio.sleep(POLL_SECONDS)


async def follow_setup(session: Session, project_id: int, follower: Follower) -> Event:
    """Print the project's new events until its setup ends; the event that says how (`setup_outcome`)."""
    svc = session.services
    session.start_worker()
    while True:
        session.check_worker()
        batch = await read_new(svc, follower, {"project_id": project_id}, project_level=True)
        follower.show(batch)
        for event in batch:
            if setup_outcome(event) is not None:
                follower.console.clear()
                return event
        follower.tick()
        await asyncio.sleep(POLL_SECONDS)


async def tail(session: Session, run_id: int, follower: Follower) -> NoReturn:
    """Print the run's new events as they come, until interrupted."""
    svc = session.services
    session.start_worker()
    while True:
        session.check_worker()
        follower.show(await read_new(svc, follower, {"protocol_run_id": run_id}))
        follower.tick()
        await asyncio.sleep(POLL_SECONDS)
