"""The change feed against a real PostgreSQL: committed writes are announced, lost connections too."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from app.domain.events import NewEvent
from app.domain.statuses import ProtocolStatus
from app.store import events, projects, protocols
from app.store.changes import Change, ChangeFeed
from app.store.transitions import move_protocol


def _event(project_id: int) -> NewEvent:
    return NewEvent(project_id=project_id, event_type="protocol.created", message="m")


async def _wait(predicate, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_committed_writes_are_announced_and_rolled_back_ones_are_not(database_url, database):
    feed = ChangeFeed(database_url)
    seen: list[Change | None] = []
    feed.subscribe(seen.append)
    await feed.start()
    try:
        assert feed.connected
        assert seen == [None]
        async with database.transaction() as conn:
            project = await projects.create(conn, name="demo", local_path="/srv/demo")
            run = await protocols.create(conn, project.id, title="T", slug="t")
        async with database.transaction() as conn:
            await move_protocol(conn, run.id, ProtocolStatus.PLANNING, expected_version=run.version)
        await _wait(lambda: Change("protocol_runs", run.id, project.id) in seen and len(seen) >= 5)
        tables = [c.table for c in seen if c is not None]
        assert {"projects", "events"} <= set(tables)
        assert all(c.scope == project.id for c in seen if c is not None and c.table != "step_runs")

        before = len(seen)
        try:
            async with database.transaction() as conn:
                await events.append(conn, _event(project.id))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        async with database.transaction() as conn:  # a later commit, to know the earlier one would be in
            await events.append(conn, _event(project.id))
        await _wait(lambda: len(seen) > before)
        await asyncio.sleep(0.1)
        assert len(seen) == before + 1
    finally:
        await feed.stop()


async def test_a_lost_connection_is_told_and_the_feed_comes_back(database_url, database):
    feed = ChangeFeed(database_url)
    seen: list[Change | None] = []
    feed.subscribe(seen.append)
    await feed.start()
    try:
        async with database.transaction() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'tasksgodzilla-changes' AND datname = current_database()"
                )
            )
        assert killed == 1
        await _wait(lambda: seen.count(None) >= 3 and feed.connected)  # up, down, up again
        async with database.transaction() as conn:
            project = await projects.create(conn, name="after", local_path="/srv/after")
        await _wait(lambda: Change("projects", project.id, project.id) in seen)
    finally:
        await feed.stop()
