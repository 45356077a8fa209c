"""The HTTP API's client (app/api_client.py) against the real application on a real socket."""

from __future__ import annotations

import asyncio

import pytest

from app.api_client import ApiClient
from app.config import Settings
from app.errors import AuthenticationError, InvalidInputError, NotFoundError, UnavailableError
from app.web.app import create_app
from tests.support.workflow import make_repos

TOKEN = "client-token-0123456789"


@pytest.fixture
async def server(database_url, aiohttp_server, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_server(create_app(settings, database_url))


def _base(server) -> str:
    return str(server.make_url("/"))


async def test_requests_answer_json_and_refusals_raise_the_servers_error_class(server, tmp_path):
    repos = make_repos(tmp_path)
    async with ApiClient(_base(server), TOKEN) as api:
        created = await api.post("/projects", {"name": "demo", "local_path": str(repos.local)})
        assert (await api.get(f"/projects/{created['id']}"))["name"] == "demo"
        listed = [p async for p in api.pages("/projects", limit=1)]
        assert [p["name"] for p in listed] == ["demo"]
        with pytest.raises(NotFoundError):
            await api.get("/projects/999999")
        with pytest.raises(InvalidInputError) as refused:
            await api.post("/projects", {"name": ""})
        assert refused.value.message  # the server's own words reach the caller
    async with ApiClient(_base(server), "wrong-token") as api:
        with pytest.raises(AuthenticationError):
            await api.get("/projects")


async def test_an_unreachable_server_is_unavailable_not_a_traceback():
    async with ApiClient("http://127.0.0.1:9", TOKEN) as api:
        with pytest.raises(UnavailableError, match="cannot reach the server"):
            await api.get("/projects")


async def test_the_event_stream_gives_each_event_once_and_resumes_from_a_cursor(server, tmp_path):
    repos = make_repos(tmp_path)
    async with ApiClient(_base(server), TOKEN) as api:
        project = await api.post("/projects", {"name": "one", "local_path": str(repos.local)})
        now = (await api.get(f"/projects/{project['id']}/events"))["next_cursor"]
        await api.patch(f"/projects/{project['id']}", {"fix_ci_attempts": 2})
        stream = api.events(after=now, project_id=project["id"])
        first = await asyncio.wait_for(anext(stream), 60)
        await stream.aclose()
        assert first.event["event_type"] == "project.updated"
        # From that event's cursor: the next event only, never the first again.
        await api.patch(f"/projects/{project['id']}", {"fix_ci_attempts": 3})
        resumed = api.events(after=first.cursor, project_id=project["id"])
        second = await asyncio.wait_for(anext(resumed), 60)
        await resumed.aclose()
        assert second.event["event_type"] == "project.updated"
        assert second.event["id"] > first.event["id"]
