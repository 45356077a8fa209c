"""Cached reads through the real API: never older than the database once the change is announced."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from sqlalchemy import text

from app.config import Settings
from app.domain.statuses import ProtocolStatus
from app.store import projects, protocols
from app.store.database import Database
from app.store.transitions import move_protocol
from app.web.app import create_app
from app.web.keys import CACHE, CHANGES, SERVICES

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def _run(client) -> tuple[int, int]:
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="demo", local_path="/srv/demo")
        run = await protocols.create(conn, project.id, title="T", slug="t")
    return project.id, run.id


async def _kept(client, *paths: str) -> None:
    """Read `paths` until the cache keeps them (the notifications of the set-up writes may come late)."""

    async def all_kept():
        for path in paths:
            assert (await client.get(path, headers=AUTH)).status == 200
        return len(client.app[CACHE]) == len(paths)

    await _eventually(all_kept)


async def _eventually(check, seconds: float = 10.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_write_by_another_process_reaches_the_next_read(database_url, client):
    project_id, run_id = await _run(client)
    cache = client.app[CACHE]
    await _kept(client, f"/protocols/{run_id}", f"/projects/{project_id}/protocols?limit=10")
    first = await client.get(f"/protocols/{run_id}", headers=AUTH)
    assert len(cache) == 2  # both answers kept
    again = await client.get(f"/protocols/{run_id}", headers=AUTH)
    assert (await again.read(), again.headers["ETag"]) == (await first.read(), first.headers["ETag"])

    other = Database(database_url, pool_size=1)  # a worker elsewhere: this process hears only NOTIFY
    try:
        async with other.transaction() as conn:
            await move_protocol(conn, run_id, ProtocolStatus.PLANNING, expected_version=1)
    finally:
        await other.dispose()

    async def moved():
        body = await (await client.get(f"/protocols/{run_id}", headers=AUTH)).json()
        return body["status"] == "planning" and body

    assert (await _eventually(moved))["version"] == 2
    listed = await (await client.get(f"/projects/{project_id}/protocols?limit=10", headers=AUTH)).json()
    assert listed["items"][0]["status"] == "planning"


async def test_reads_go_to_the_database_while_the_feed_is_down(database_url, client):
    _project_id, run_id = await _run(client)
    cache, feed, database = client.app[CACHE], client.app[CHANGES], client.app[SERVICES].database
    await _kept(client, f"/protocols/{run_id}")
    async with database.transaction() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'tasksgodzilla-changes' AND datname = current_database()"
            )
        )

    async def off():
        return not cache.enabled

    await _eventually(off)
    assert len(cache) == 0
    # While it is off, a change nobody announces to us is still read at once.
    await feed.stop()
    cache.on_change(None, connected=False)
    async with database.transaction() as conn:
        await move_protocol(conn, run_id, ProtocolStatus.PLANNING, expected_version=1)
    body = await (await client.get(f"/protocols/{run_id}", headers=AUTH)).json()
    assert body["status"] == "planning"
    assert len(cache) == 0


async def test_an_unknown_run_is_a_404_and_is_not_kept(database_url, client):
    response = await client.get("/protocols/999999", headers=AUTH)
    assert response.status == 404
    assert len(client.app[CACHE]) == 0


async def test_a_write_through_the_api_empties_the_cache_when_it_returns(database_url, client):
    project_id, _run_id = await _run(client)
    cache = client.app[CACHE]
    # Tagged with a row no notification will name: only a write's own invalidation can drop it.
    cache.put("sentinel", [("protocol", 10**12)], web.json_response({}), since=cache.generation)
    assert (await client.get(f"/protocols/{_run_id}", headers=AUTH)).status == 200
    assert cache.get("sentinel") is not None  # reads leave it
    created = await client.post(f"/projects/{project_id}/protocols", json={"title": "More"}, headers=AUTH)
    assert created.status == 201
    assert cache.get("sentinel") is None
