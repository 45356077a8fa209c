"""The SSE streams of one process share one reader of the log (app/web/live.py): one read per
notification however many clients follow, each client gets its own scope's events, all of them,
once each, in transaction order, through concurrent writers, resumes, and a tail smaller than the
backlog."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text

from app.config import Settings
from app.domain.events import NewEvent
from app.store import events, projects
from app.web import live
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.sse import next_sse
from tests.support.tenants import make_tenant
from tests.support.workflow import wait_for

TOKEN = "operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


def _count_log_reads(client) -> list[str]:
    """Every statement that reads new events from the log (what a stream costs per notification)."""
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement: str, *_args) -> None:
        if "pg_snapshot_xmin" in statement and "FROM events" in statement:
            seen.append(statement)

    sa_event.listen(client.app[SERVICES].database.engine.sync_engine, "before_cursor_execute", on_execute)
    return seen


async def _messages_until(response, count: int) -> list[dict[str, str]]:
    """The next `count` messages of an open stream."""
    return [await next_sse(response) for _ in range(count)]


async def test_many_streams_cost_one_read_per_notification_and_each_gets_its_own_events(client):
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha3k"), await make_tenant(svc, "bravo3k")
    follow = {
        "operator, all": ("/events/stream", OPERATOR),
        "operator, project a": (f"/events/stream?project_id={a.project.id}", OPERATOR),
        "operator, run a": (f"/events/stream?protocol_id={a.run.id}", OPERATOR),
        "token of project a": ("/events/stream", {"X-Project-Token": a.project_token}),
        "token of organisation a": ("/events/stream", {"X-Organisation-Token": a.organisation_token}),
        "token of organisation b": ("/events/stream", {"X-Organisation-Token": b.organisation_token}),
    }
    clients = [(name, path, headers) for name, (path, headers) in follow.items() for _ in range(5)]
    streams = []
    for _, path, headers in clients:
        response = await client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        streams.append(response)
    reads = _count_log_reads(client)

    written: list[tuple[str, int]] = []  # (message, project)
    for i in range(20):
        tenant = a if i % 2 == 0 else b
        async with svc.database.transaction() as conn:
            await events.append(
                conn, NewEvent(tenant.project.id, "step.created", f"note {i}", protocol_run_id=tenant.run.id)
            )
        written.append((f"note {i}", tenant.project.id))
    of_a = [m for m, project in written if project == a.project.id]
    of_b = [m for m, project in written if project == b.project.id]
    expected = {
        "operator, all": [m for m, _ in written],
        "operator, project a": of_a,
        "operator, run a": of_a,
        "token of project a": of_a,
        "token of organisation a": of_a,
        "token of organisation b": of_b,
    }
    for (name, _, _), response in zip(clients, streams, strict=True):
        received = await _messages_until(response, len(expected[name]))
        assert [m["data"].split('"message":"')[1].split('"')[0] for m in received] == expected[name], name
        response.close()
    # 30 clients, 20 notifications: the old streams read 20 times per client; the hub reads at most
    # once per notification (fewer when events come together), whoever listens.
    assert 1 <= len(reads) <= 20 + 2, len(reads)


async def _write_concurrently(svc, project_id: int, writers: int, each: int) -> None:
    """`writers` tasks, each committing `each` events, with transactions that take their xid, insert
    and commit in shuffled order: events commit out of id order and out of xid order."""
    rng = random.Random(7)

    async def writer(n: int) -> None:
        for i in range(each):
            async with AsyncExitStack() as stack:
                conn = await stack.enter_async_context(svc.database.transaction())
                if rng.random() < 0.5:
                    await conn.execute(text("SELECT pg_current_xact_id()"))  # an older xid than it inserts
                await asyncio.sleep(rng.random() * 0.01)
                await events.append(conn, NewEvent(project_id, "project.updated", f"w{n}-{i}"))
                await asyncio.sleep(rng.random() * 0.01)

    await asyncio.gather(*(writer(n) for n in range(writers)))


async def _log_order(svc, project_id: int) -> list[str]:
    async with svc.database.read() as conn:
        return [e.message for e in await events.list_page(conn, project_id=project_id, limit=500)]


async def test_concurrent_writers_lose_and_repeat_no_event_live_resumed_or_older_than_the_tail(
    client, monkeypatch
):
    monkeypatch.setattr(live, "TAIL", 7)  # the backlog below outgrows the tail: resumes read the database
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await projects.create(conn, name="busy", git_url="https://example.com/busy.git")
    live_streams = []
    for _ in range(4):
        response = await client.get(f"/events/stream?project_id={project.id}", headers=OPERATOR)
        assert response.status == 200
        live_streams.append(response)

    await _write_concurrently(svc, project.id, writers=4, each=25)
    order = await _log_order(svc, project.id)
    assert len(order) == 100
    received = []
    for response in live_streams:
        received.append(await _messages_until(response, 100))
        response.close()
    for messages in received:
        assert [m["data"].split('"message":"')[1].split('"')[0] for m in messages] == order
    # From the start of the log, and resumed from the 30th message: read back past the tail.
    from_start = await client.get(f"/events/stream?project_id={project.id}&after=0", headers=OPERATOR)
    resumed = await client.get(
        f"/events/stream?project_id={project.id}",
        headers={**OPERATOR, "Last-Event-ID": received[0][29]["id"]},
    )
    later = [f"late-{i}" for i in range(5)]
    for message in later:
        async with svc.database.transaction() as conn:
            await events.append(conn, NewEvent(project.id, "project.updated", message))
    for response, expected in ((from_start, order + later), (resumed, order[30:] + later)):
        messages = await _messages_until(response, len(expected))
        assert [m["data"].split('"message":"')[1].split('"')[0] for m in messages] == expected
        response.close()


async def test_a_stream_that_falls_behind_rejoins_from_its_last_event(database, monkeypatch):
    monkeypatch.setattr(live, "MAX_PENDING", 3)
    monkeypatch.setattr(live, "TAIL", 4)  # and the hub keeps fewer than it missed: some come from the log
    async with database.transaction() as conn:
        project = await projects.create(conn, name="slow", git_url="https://example.com/slow.git")
    hub = live.LiveHub(database, None)  # no feed: the hub reads every IDLE_SECONDS
    follower = hub.follow(live.Interest(project_id=project.id), after=events.START)
    try:
        while not hub.joined:
            assert await anext(follower) == []  # nothing yet
        for i in range(10):
            async with database.transaction() as conn:
                await events.append(conn, NewEvent(project.id, "project.updated", f"e{i}"))
        before = hub.reads
        await wait_for(lambda: hub.reads >= before + 2, seconds=30, what="the hub to read the ten events")
        got: list[str] = []  # the follower read nothing meanwhile: ten waiting, more than it may keep
        while len(got) < 10:
            got += [entry.placed.event.message for entry in await anext(follower)]
        assert got == [f"e{i}" for i in range(10)]
    finally:
        await follower.aclose()
        await hub.stop()
