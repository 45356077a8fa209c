"""Following work over HTTP: the events pages of a project or a run from a cursor, printed as local mode
prints them (app/cli/progress.py), with the run's status read from the API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.api_client import ApiClient
from app.cli.progress import POLL_SECONDS, Follower, setup_outcome
from app.cli.remote import steps_of
from app.domain.records import Event, ProtocolRun, StepRun

PAGE = 500


async def events_after(
    api: ApiClient, path: str, cursor: str | None, *, project_level: bool = False
) -> tuple[list[Event], str | None]:
    """Every event of `path` (an events page) after `cursor` (None: from the first one), and the cursor
    to go on from. `project_level` keeps only events about the project itself, not one of its runs."""
    found: list[Event] = []
    while True:
        page = await api.get(path, limit=PAGE, **({"cursor": cursor} if cursor else {}))
        found += [
            Event.model_validate(item)
            for item in page["items"]
            if not project_level or item.get("protocol_run_id") is None
        ]
        cursor = page.get("next_cursor") or cursor
        if len(page["items"]) < PAGE:
            return found, cursor


async def follow_setup_over_http(
    api: ApiClient, project_id: int, follower: Follower, cursor: str | None
) -> Event:
    """Print the project's events after `cursor` until its setup ends; the event that says how."""
    path = f"/projects/{project_id}/events"
    while True:
        batch, cursor = await events_after(api, path, cursor, project_level=True)
        follower.show(batch)
        for event in batch:
            if setup_outcome(event) is not None:
                follower.console.clear()
                return event
        follower.tick()
        await asyncio.sleep(POLL_SECONDS)


async def follow_run_over_http(
    api: ApiClient,
    run_id: int,
    follower: Follower,
    cursor: str | None,
    done: Callable[[ProtocolRun, list[StepRun]], Awaitable[bool]],
) -> tuple[ProtocolRun, list[StepRun]]:
    """Print the run's events after `cursor` until `await done(run, steps)`; the run and steps then."""
    path = f"/protocols/{run_id}/events"
    while True:
        run = ProtocolRun.model_validate(await api.get(f"/protocols/{run_id}"))
        plan = await steps_of(api, run_id)
        finished = await done(run, plan)
        batch, cursor = await events_after(api, path, cursor)
        follower.show(batch)
        if finished:
            follower.console.clear()
            return run, plan
        follower.tick()
        await asyncio.sleep(POLL_SECONDS)


async def tail_over_http(api: ApiClient, run_id: int, follower: Follower, *, follow: bool) -> None:
    """Print the run's events from its first; with `follow`, then each new one until interrupted."""
    path = f"/protocols/{run_id}/events"
    batch, cursor = await events_after(api, path, None)
    follower.show(batch)
    while follow:
        follower.tick()
        await asyncio.sleep(POLL_SECONDS)
        batch, cursor = await events_after(api, path, cursor)
        follower.show(batch)
