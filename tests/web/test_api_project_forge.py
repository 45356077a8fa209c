"""A project's forge settings through the API: stored when valid, a 422 naming the field when not."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.web.app import create_app
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


async def test_forge_repo_and_fix_ci_attempts_are_set_and_checked(client, tmp_path):
    repos = make_repos(tmp_path)
    created = await client.post(
        "/projects",
        json={
            "name": "shop",
            "local_path": str(repos.local),
            "forge_repo": "acme/shop",
            "fix_ci_attempts": 2,
        },
        headers=AUTH,
    )
    assert created.status == 201, await created.text()
    project = await created.json()
    assert (project["forge_repo"], project["fix_ci_attempts"]) == ("acme/shop", 2)

    patched = await client.patch(
        f"/projects/{project['id']}",
        json={"forge_repo": "group/sub/.github", "fix_ci_attempts": 0},
        headers=AUTH,
    )
    assert patched.status == 200, await patched.text()
    assert (await patched.json())["forge_repo"] == "group/sub/.github"

    for field, value in (
        ("forge_repo", "shop"),
        ("forge_repo", "acme/.."),
        ("forge_repo", "acme/x y"),
        ("fix_ci_attempts", 11),
    ):
        refused = await client.patch(f"/projects/{project['id']}", json={field: value}, headers=AUTH)
        assert refused.status == 422
        assert field in (await refused.json())["error"]["details"]["field"]
