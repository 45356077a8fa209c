"""Every refusal of a project's registration names the way out: the setting to change or the field
to give instead (issue 17, "Frictions to remove")."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.web.app import create_app
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def repos(tmp_path):
    return make_repos(tmp_path / "allowed")


async def _client(aiohttp_client, database_url, tmp_path, **overrides):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        local_path_roots=[tmp_path / "allowed"],
        **overrides,
    )
    return await aiohttp_client(create_app(settings, database_url))


async def _refusal(client, body: dict, status: int = 422) -> dict:
    response = await client.post("/projects", json=body, headers=AUTH)
    assert response.status == status, await response.text()
    return (await response.json())["error"]


@pytest.mark.parametrize("spelling", ["{origin}", "file://{origin}"])
async def test_a_local_git_url_names_the_setting_and_the_local_path_field(
    aiohttp_client, database_url, tmp_path, repos, spelling
):
    client = await _client(aiohttp_client, database_url, tmp_path)
    error = await _refusal(client, {"name": "demo", "git_url": spelling.format(origin=repos.origin)})
    assert error["details"]["field"] == "git_url"
    assert "TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES" in error["message"]
    assert "local_path" in error["message"]
    assert "--local-path" in error["message"]


async def test_a_relative_local_path_is_refused_naming_the_field(
    aiohttp_client, database_url, tmp_path, repos, monkeypatch
):
    """The API never reads a relative path against its own working folder."""
    monkeypatch.chdir(repos.local.parent)
    client = await _client(aiohttp_client, database_url, tmp_path, git_allow_local_remotes=True)
    for relative in ("local", "./local", "allowed/local"):
        error = await _refusal(client, {"name": "demo", "local_path": relative})
        assert error["details"]["field"] == "local_path"
        assert "local_path must be absolute" in error["message"]
    listed = await (await client.get("/projects", headers=AUTH)).json()
    assert listed["items"] == []


async def test_every_registration_refusal_says_what_to_do(aiohttp_client, database_url, tmp_path, repos):
    client = await _client(aiohttp_client, database_url, tmp_path, git_allow_local_remotes=True)
    elsewhere = make_repos(tmp_path / "elsewhere")
    cases = [
        ({"name": "a"}, "--local-path"),
        ({"name": "b", "git_url": "https://example.com"}, "https://host/owner/repo.git"),
        ({"name": "c", "git_url": "https://10.0.0.1/o/r.git"}, "TASKSGODZILLA_GIT_ALLOW_PRIVATE_REMOTES"),
        ({"name": "d", "git_url": "https://169.254.169.254/o/r.git"}, "public https or ssh address"),
        ({"name": "e", "git_url": "ext::helper"}, "use https://"),
        ({"name": "f", "git_url": "relative/repo.git"}, "absolute path"),
        (
            {"name": "g", "local_path": str(elsewhere.local)},
            "add its folder to TASKSGODZILLA_LOCAL_PATH_ROOTS",
        ),
    ]
    for body, fix in cases:
        error = await _refusal(client, body)
        assert fix in error["message"], (body, error)
    first = await client.post("/projects", json={"name": "one", "local_path": str(repos.local)}, headers=AUTH)
    assert first.status == 201, await first.text()
    error = await _refusal(client, {"name": "two", "local_path": str(repos.local)}, status=409)
    assert "a folder of its own" in error["message"]


async def test_a_shared_remote_names_the_branch_pattern_fix(aiohttp_client, database_url, tmp_path):
    client = await _client(aiohttp_client, database_url, tmp_path, branch_pattern="tasksgodzilla/{name}")
    url = "https://github.com/acme/shop.git"
    first = await client.post("/projects", json={"name": "one", "git_url": url}, headers=AUTH)
    assert first.status == 201, await first.text()
    error = await _refusal(client, {"name": "two", "git_url": url}, status=409)
    assert "add {project} to the pattern" in error["message"]
