"""The SSE stream, the events pages and the console feed lose no event to concurrent commits.

Each case holds transactions open on their own connections in the order that loses an event to a
reader of `id > cursor`: an event whose transaction took a lower id (or an older xid) but committed
after the reader moved on. A marker event from a transaction older than the one still open tells the
test that the stream has read past the others (it is the only one the horizon lets through). Pages
expected to show events are read until they do, with a deadline: a transaction of another session
on the same server holds the horizon back too.
"""

from __future__ import annotations

import base64
import re
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import text

from app.config import Settings
from app.domain.events import NewEvent
from app.store import events, projects
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.sse import next_sse
from tests.support.workflow import wait_for

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


@pytest.fixture
async def open_client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def _project_id(client) -> int:
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="demo", git_url="https://example.com/demo.git")
        return project.id


async def _open(stack: AsyncExitStack, client, *, take_xid: bool = False):
    """A transaction on its own connection, committed when `stack` closes."""
    conn = await stack.enter_async_context(client.app[SERVICES].database.transaction())
    if take_xid:
        await conn.execute(text("SELECT pg_current_xact_id()"))
    return conn


async def _append(conn, project_id: int, event_type: str):
    return await events.append(conn, NewEvent(project_id, event_type, event_type))


async def _commit_one(client, project_id: int, event_type: str):
    async with client.app[SERVICES].database.transaction() as conn:
        return await _append(conn, project_id, event_type)


async def _page(client, project_id: int, cursor: str | None) -> tuple[list[str], str | None]:
    query = f"?cursor={cursor}" if cursor else ""
    response = await client.get(f"/projects/{project_id}/events{query}", headers=AUTH)
    assert response.status == 200, await response.text()
    body = await response.json()
    return [item["event_type"] for item in body["items"]], body["next_cursor"]


async def _settled_page(client, project_id: int, cursor: str | None, count: int) -> list[str]:
    """The events of the first page to show `count` or more."""

    async def shown() -> list[str] | None:
        names, _ = await _page(client, project_id, cursor)
        return names if len(names) >= count else None

    return await wait_for(shown, seconds=30, what=f"a page of {count} events")


async def _stream(client, project_id: int, **headers: str):
    # `after=0`: from the first event, so the start does not race the test's writes.
    response = await client.get(
        f"/events/stream?project_id={project_id}&after=0", headers={**AUTH, **headers}
    )
    assert response.status == 200, await response.text()
    return response


async def test_a_page_cursor_never_passes_an_event_that_commits_later(client):
    # The probe: A inserts, B inserts and commits, a page is read, A commits.
    project_id = await _project_id(client)
    async with AsyncExitStack() as a:
        await _append(await _open(a, client), project_id, "project.updated")
        await _commit_one(client, project_id, "project.ready")
        first, cursor = await _page(client, project_id, None)
    rest = await _settled_page(client, project_id, cursor, 2 - len(first))
    assert first + rest == ["project.updated", "project.ready"]


async def test_a_page_cursor_follows_transaction_order_not_id_order(client):
    # T_E takes its xid first; T_F inserts the lower id; T_E inserts and commits; a page hands out
    # T_E's event; T_F commits.
    project_id = await _project_id(client)
    async with AsyncExitStack() as t_f:
        async with AsyncExitStack() as t_e:
            conn_e = await _open(t_e, client, take_xid=True)
            f = await _append(await _open(t_f, client), project_id, "step.running")
            e = await _append(conn_e, project_id, "step.completed")
            assert f.id < e.id
        assert await _settled_page(client, project_id, None, 1) == ["step.completed"]
        _, cursor = await _page(client, project_id, None)
    assert await _settled_page(client, project_id, cursor, 1) == ["step.running"]


async def test_the_stream_delivers_an_event_whose_transaction_committed_late(client):
    project_id = await _project_id(client)
    stream = await _stream(client, project_id)
    async with AsyncExitStack() as a:
        async with AsyncExitStack() as older:
            conn_older = await _open(older, client, take_xid=True)
            await _append(await _open(a, client), project_id, "project.updated")  # A, left open
            await _commit_one(client, project_id, "project.ready")  # B
            await _append(conn_older, project_id, "project.setup_started")  # the marker
        # The stream reads past B (it hands out the marker) while A is open...
        assert (await next_sse(stream))["event"] == "project.setup_started"
    # ...and A, once committed, still comes, before B.
    assert [(await next_sse(stream))["event"] for _ in range(2)] == ["project.updated", "project.ready"]


async def test_a_long_transaction_without_events_delays_them_and_the_stream_then_delivers(client):
    project_id = await _project_id(client)
    stream = await _stream(client, project_id)
    async with AsyncExitStack() as long:
        async with AsyncExitStack() as older:
            conn_older = await _open(older, client, take_xid=True)
            await _open(long, client, take_xid=True)  # writes, but no event
            await _commit_one(client, project_id, "project.ready")
            assert await _page(client, project_id, None) == ([], None)  # held back, not lost
            await _append(conn_older, project_id, "project.setup_started")  # the marker
        assert (await next_sse(stream))["event"] == "project.setup_started"
    # No event marks the end of the long transaction: the stream must notice by itself.
    assert (await next_sse(stream))["event"] == "project.ready"


async def test_message_ids_resume_the_stream_and_plain_event_ids_still_do(client):
    project_id = await _project_id(client)
    kinds = ["project.updated", "project.ready", "project.setup_started"]
    stored = [await _commit_one(client, project_id, kind) for kind in kinds]
    stream = await _stream(client, project_id)
    first = await next_sse(stream)
    stream.close()
    assert first["event"] == "project.updated"

    resumed = await _stream(client, project_id, **{"Last-Event-ID": first["id"]})
    assert (await next_sse(resumed))["event"] == "project.ready"
    resumed.close()
    by_id = await _stream(client, project_id, **{"Last-Event-ID": str(stored[1].id)})
    assert (await next_sse(by_id))["event"] == "project.setup_started"
    by_id.close()
    response = await client.get(f"/events/stream?project_id={project_id}&after={stored[0].id}", headers=AUTH)
    assert (await next_sse(response))["event"] == "project.ready"
    response.close()
    # An events page's cursor resumes a stream, and a stream's message id an events page.
    assert await _settled_page(client, project_id, first["id"], 2) == kinds[1:]


@pytest.mark.parametrize(
    ("path", "headers", "field"),
    [
        ("/events/stream", {"Last-Event-ID": "not-a-cursor!"}, "Last-Event-ID"),
        ("/events/stream?after=%25%25", {}, "after"),
        ("/events/stream?after=9223372036854775808", {}, "after"),
        ("/events?cursor=" + base64.urlsafe_b64encode(b"1:x").decode(), {}, "cursor"),
        ("/events?cursor=" + base64.urlsafe_b64encode(b"99999999999999999999:1").decode(), {}, "cursor"),
    ],
)
async def test_a_cursor_this_api_did_not_give_out_is_a_422_naming_it(client, path, headers, field):
    response = await client.get(path, headers={**AUTH, **headers})
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]["details"]["field"] == field


async def test_the_console_feed_delivers_what_committed_after_its_page_was_read(open_client):
    client = open_client
    project_id = await _project_id(client)
    async with AsyncExitStack() as a:
        await _append(await _open(a, client), project_id, "project.updated")  # A, left open
        await _commit_one(client, project_id, "project.ready")
        page = await (await client.get("/console/activity")).text()
    start = re.search(r'sse-connect="/console/stream\?after=([^"&]+)', page)
    assert start, "the page names where its stream starts"
    stream = await client.get(f"/console/stream?after={start.group(1)}")
    seen: list[str] = []
    while "project.updated" not in seen:
        message = await next_sse(stream)
        if message["event"] == "feed":
            seen += re.findall(r'data-event-type="([^"]+)"', message["data"])
    stream.close()
