"""Input the JSON API must refuse with a 4xx naming the field, never a 500 (found by fuzzing)."""

from __future__ import annotations

import base64

import pytest

from app.config import Settings
from app.web.app import create_app

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


BODIES = [
    (b"\xb3\xec", "body"),  # not UTF-8
    (b"1" * 5000, "body"),  # an integer Python will not convert
    (b"[" * 100_000 + b"]" * 100_000, "body"),  # nested past the stack
    (b'{"name": "a\\u0000b", "local_path": "/srv/x"}', "name"),
    (b'{"name": "x", "local_path": "/srv/\\ud800"}', "local_path"),
    (b'{"name": "x", "local_path": "/srv/x", "\\u0000": 1}', "body"),
]


PARAMETERS = [
    (f"/projects?cursor={_cursor(2**63)}", 422, "cursor"),
    (f"/events?cursor={_cursor(10**20)}", 422, "cursor"),
    ("/events/stream?after=9223372036854775808", 422, "after"),
    ("/events/stream?project_id=100000000000000000000", 422, "project_id"),
    ("/events?type=a%00b", 422, "type.0"),
    ("/projects/%C2%B2", 404, "project_id"),  # '²': a digit to str.isdigit(), not to int()
    ("/projects/%D9%A1", 404, "project_id"),  # '١': Arabic-Indic one, not project 1
    ("/projects/" + "1" * 5000, 404, "project_id"),
    ("/protocols/1/artifacts/a%00b", 422, "name"),
]


async def test_unreadable_or_unstorable_bodies_are_a_422(client):
    for body, field in BODIES:
        response = await client.post("/projects", data=body, headers=JSON)
        assert response.status == 422, (body[:40], await response.text())
        assert (await response.json())["error"]["details"]["field"] == field, body[:40]


async def test_out_of_range_or_unstorable_parameters_are_refused(client):
    for path, status, field in PARAMETERS:
        response = await client.get(path, headers=AUTH)
        assert response.status == status, (path[:60], await response.text())
        assert (await response.json())["error"]["details"]["field"] == field, path[:60]


async def test_a_body_past_the_size_limit_is_a_413_envelope(client):
    response = await client.post("/projects", data=b" " * 2_000_000, headers=JSON)
    assert response.status == 413
    assert set((await response.json())["error"]) == {"code", "message", "details", "correlation_id"}
