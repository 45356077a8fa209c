"""TASKSGODZILLA_LOCAL_PATH_ROOTS: a project's local path must lie inside an allowed folder."""

from __future__ import annotations

import pytest

from app.config import Settings, load_settings
from app.errors import ConfigError
from app.web.app import create_app
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def repos(tmp_path):
    return make_repos(tmp_path / "allowed")


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path, repos):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        local_path_roots=[tmp_path / "allowed"],
        git_allow_local_remotes=True,  # the repositories' origins are local folders
    )
    return await aiohttp_client(create_app(settings, database_url))


async def test_only_paths_inside_the_roots_are_registered(client, repos, tmp_path):
    inside = await client.post("/projects", json={"name": "ok", "local_path": str(repos.local)}, headers=AUTH)
    assert inside.status == 201, await inside.text()

    elsewhere = make_repos(tmp_path / "elsewhere")
    outside = await client.post(
        "/projects", json={"name": "no", "local_path": str(elsewhere.local)}, headers=AUTH
    )
    assert outside.status == 422
    assert (await outside.json())["error"]["details"]["field"] == "local_path"

    link = tmp_path / "allowed" / "sneaky"
    link.symlink_to(elsewhere.local)  # inside by name, outside in fact
    escaped = await client.post("/projects", json={"name": "sneaky", "local_path": str(link)}, headers=AUTH)
    assert escaped.status == 422
    dotted = str(tmp_path / "allowed" / ".." / "elsewhere" / elsewhere.local.name)
    assert (
        await client.post("/projects", json={"name": "dots", "local_path": dotted}, headers=AUTH)
    ).status == 422
    listed = await (await client.get("/projects", headers=AUTH)).json()
    assert [p["name"] for p in listed["items"]] == ["ok"]


def test_roots_are_read_from_a_comma_separated_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("TASKSGODZILLA_LOCAL_PATH_ROOTS", f"{tmp_path}/a, {tmp_path}/b")
    assert Settings().local_path_roots == [tmp_path / "a", tmp_path / "b"]


def test_relative_roots_are_a_clear_error(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_LOCAL_PATH_ROOTS", "/srv/ok,repos")
    with pytest.raises(ConfigError, match="LOCAL_PATH_ROOTS: must be absolute folders, not repos"):
        load_settings()


async def test_two_projects_never_share_a_folder(client, repos, tmp_path):
    first = await client.post("/projects", json={"name": "one", "local_path": str(repos.local)}, headers=AUTH)
    assert first.status == 201, await first.text()
    (tmp_path / "allowed" / "alias").symlink_to(repos.local)
    for spelling in (str(repos.local), f"{repos.local}/", str(tmp_path / "allowed" / "alias")):
        second = await client.post("/projects", json={"name": "two", "local_path": spelling}, headers=AUTH)
        assert second.status == 409, spelling
        error = (await second.json())["error"]
        assert error["details"]["field"] == "local_path"
        assert "'one'" in error["message"]
    listed = await (await client.get("/projects", headers=AUTH)).json()
    assert [p["name"] for p in listed["items"]] == ["one"]
