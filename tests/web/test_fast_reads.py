"""The API's hot reads (a run, a page of runs) go through the driver and write rows as JSON without
records: the answers must be the very bytes the records would give, for every filter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic_core import to_json
from sqlalchemy import update

from app.config import Settings
from app.domain.statuses import ProtocolStatus
from app.errors import UnavailableError
from app.store import projects, protocols
from app.store.database import Database
from app.store.tables import protocol_runs
from app.web.api.models import encode_cursor, page_of
from app.web.app import create_app
from app.web.keys import SERVICES

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TITLES = ["Tidy 100% of it", "under_score", "back\\slash", "Plain title", "Émoji ✓ title", "plain again"]


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def _runs(client) -> tuple[int, list[int]]:
    """Runs with every kind of value: nulls and not, several statuses, microsecond timestamps."""
    statuses = list(ProtocolStatus)
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="demo", local_path="/srv/demo")
        await projects.create(conn, name="other", local_path="/srv/other")
        ids = []
        for index, title in enumerate(TITLES * 2):
            run = await protocols.create(conn, project.id, title=title, slug=f"s{index}")
            changes = {"status": statuses[index % len(statuses)].value}
            if index % 2:
                changes |= {
                    "pr_number": index,
                    "pr_url": f"https://example.com/pr/{index}",
                    "finished_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                    "summary": 'Done.\nWith "quotes" and \u2028 separators',
                }
            await conn.execute(update(protocol_runs).where(protocol_runs.c.id == run.id).values(**changes))
            ids.append(run.id)
    return project.id, ids


async def test_one_run_is_the_records_bytes_and_etag(client):
    _project_id, ids = await _runs(client)
    database = client.app[SERVICES].database
    for run_id in ids:
        answer = await client.get(f"/protocols/{run_id}", headers=AUTH)
        async with database.read() as conn:
            record = await protocols.get(conn, run_id)
        assert await answer.read() == to_json(record)
        assert answer.headers["ETag"] == f'"{record.version}"'
        assert answer.content_type == "application/json"
    missing = await client.get("/protocols/999999", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"]["message"] == "protocol run 999999 not found"


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"limit": 5},
        {"limit": 5, "before": 3},
        {"status": ["pending"]},
        {"status": ["pending", "failed", "completed"], "limit": 2},
        {"q": "100%"},
        {"q": "under_"},
        {"q": "back\\"},
        {"q": "TITLE"},
        {"q": "✓", "status": ["planning"]},
        {"q": "plain", "limit": 1, "before": 6, "status": ["pending", "planning", "planned"]},
    ],
)
async def test_a_page_is_the_records_bytes_for_every_filter(client, filters):
    project_id, ids = await _runs(client)
    limit = filters.get("limit", 50)
    before = ids[filters["before"]] if "before" in filters else None
    params: list[tuple[str, str]] = [("limit", str(limit))]
    params += [("status", s) for s in filters.get("status", [])]
    if "q" in filters:
        params.append(("q", filters["q"]))
    if before is not None:
        params.append(("cursor", encode_cursor(before)))
    answer = await client.get(f"/projects/{project_id}/protocols", params=params, headers=AUTH)
    assert answer.status == 200, await answer.text()
    async with client.app[SERVICES].database.read() as conn:
        records = await protocols.list_for_project(
            conn,
            project_id,
            statuses=[ProtocolStatus(s) for s in filters.get("status", [])],
            before_id=before,
            limit=limit,
            search=filters.get("q"),
        )
    assert await answer.read() == to_json(page_of(records, limit))


async def test_a_cancelled_driver_read_leaves_the_pool_whole_and_working(database_url):
    database = Database(database_url, pool_size=1)  # two connections at most

    async def slow() -> None:
        async with database.driver_read() as conn:
            await conn.fetchval("SELECT pg_sleep(30)")

    try:
        for _ in range(3):
            task = asyncio.create_task(slow())
            await asyncio.sleep(0.2)  # in the query, or about to be: either way it must not leak
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(4):  # every pooled connection, in turn
                async with database.driver_read() as conn:
                    assert await conn.fetchval("SELECT 1") == 1
        assert database.engine.sync_engine.pool.checkedout() == 0
    finally:
        await database.dispose()


async def test_an_sql_error_keeps_the_connection_and_a_dead_server_is_unavailable(database_url):
    database = Database(database_url, pool_size=1)
    try:
        with pytest.raises(Exception, match="division by zero"):
            async with database.driver_read() as conn:
                await conn.fetchval("SELECT 1 / 0")
        async with database.driver_read() as conn:
            assert await conn.fetchval("SELECT 2") == 2
    finally:
        await database.dispose()
    nowhere = Database("postgresql://postgres@127.0.0.1:1/none", pool_size=1, connect_timeout=1)
    try:
        with pytest.raises(UnavailableError):
            async with nowhere.driver_read():
                pass
    finally:
        await nowhere.dispose()
