"""Conditional reads: a GET whose If-None-Match names the current ETag is a 304 with no body; any
change to the row gives a new ETag and a 200. Nothing is kept in memory: each answer is read anew."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.statuses import ProtocolStatus
from app.store import projects, protocols
from app.store.database import Database
from app.store.transitions import move_protocol
from app.web.app import create_app
from app.web.keys import SERVICES

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


@pytest.mark.parametrize(
    "offered",
    ['"{v}"', 'W/"{v}"', '"999", "{v}"', '"998",W/"{v}" , "999"', "*"],
    ids=["strong", "weak", "list", "list-weak-spaces", "star"],
)
async def test_the_current_etag_is_a_304_with_the_etag_and_no_body(client, offered):
    _project_id, run_id = await _run(client)
    first = await client.get(f"/protocols/{run_id}", headers=AUTH)
    assert first.status == 200
    etag = first.headers["ETag"]
    version = (await first.json())["version"]
    assert etag == f'"{version}"'
    again = await client.get(
        f"/protocols/{run_id}", headers={**AUTH, "If-None-Match": offered.format(v=version)}
    )
    assert again.status == 304
    assert again.headers["ETag"] == etag
    assert await again.read() == b""


@pytest.mark.parametrize("offered", ['"999"', 'W/"999", "998"', "{v}", 'junk "{v}"', ""])
async def test_an_etag_that_is_not_current_gets_the_whole_answer(client, offered):
    _project_id, run_id = await _run(client)
    version = (await (await client.get(f"/protocols/{run_id}", headers=AUTH)).json())["version"]
    answer = await client.get(
        f"/protocols/{run_id}", headers={**AUTH, "If-None-Match": offered.format(v=version)}
    )
    assert answer.status == 200
    assert (await answer.json())["id"] == run_id


async def test_a_change_by_another_process_is_a_new_etag_and_a_200(database_url, client):
    _project_id, run_id = await _run(client)
    first = await client.get(f"/protocols/{run_id}", headers=AUTH)
    etag = first.headers["ETag"]
    other = Database(database_url, pool_size=1)  # a worker elsewhere: nothing tells this process
    try:
        async with other.transaction() as conn:
            await move_protocol(conn, run_id, ProtocolStatus.PLANNING, expected_version=1)
    finally:
        await other.dispose()
    # At once, not after a notification: every read goes to the database.
    after = await client.get(f"/protocols/{run_id}", headers={**AUTH, "If-None-Match": etag})
    assert after.status == 200
    assert after.headers["ETag"] != etag
    assert (await after.json())["status"] == "planning"
    current = after.headers["ETag"]
    unchanged = await client.get(f"/protocols/{run_id}", headers={**AUTH, "If-None-Match": current})
    assert unchanged.status == 304


async def test_a_list_and_an_error_ignore_if_none_match(client):
    project_id, _run_id = await _run(client)
    listed = await client.get(f"/projects/{project_id}/protocols", headers={**AUTH, "If-None-Match": "*"})
    assert listed.status == 200  # a page carries no ETag: always answered whole
    assert len((await listed.json())["items"]) == 1
    missing = await client.get("/protocols/999999", headers={**AUTH, "If-None-Match": "*"})
    assert missing.status == 404


async def test_a_project_read_honours_if_none_match_too(client):
    project_id, _run_id = await _run(client)
    first = await client.get(f"/projects/{project_id}", headers=AUTH)
    again = await client.get(
        f"/projects/{project_id}", headers={**AUTH, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304


async def test_the_openapi_document_declares_the_304(client):
    spec = await (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/protocols/{protocol_id}"]["get"]
    assert "304" in operation["responses"]
    assert "If-None-Match" in [p["name"] for p in operation["parameters"]]
    assert "304" not in spec["paths"]["/projects/{project_id}/protocols"]["get"]["responses"]
