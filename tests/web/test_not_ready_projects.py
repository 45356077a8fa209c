"""A project whose setup failed takes no protocol run: 409, the reason, and how to re-run setup."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.services import projects as project_service
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


async def test_a_project_whose_setup_failed_refuses_new_runs_and_says_how_to_set_it_up(client, tmp_path):
    repos = make_repos(tmp_path / "repos")
    svc = client.app[SERVICES]
    project = await project_service.register_project(svc, name="demo", local_path=str(repos.local))
    await project_service.fail_setup(svc, project.id, "the repository has no branch 'trunk'")

    url = f"/projects/{project.id}/protocols"
    for body in ({"title": "Add login"}, {"title": "Add login", "start": True}):
        refused = await client.post(url, json=body, headers=AUTH)
        assert refused.status == 409, await refused.text()
        error = (await refused.json())["error"]
        assert "setup failed: the repository has no branch 'trunk'" in error["message"]
        assert f"POST /projects/{project.id}/actions/setup" in error["message"]
        assert f"tasksgodzilla project setup {project.id}" in error["message"]
        assert error["details"]["status"] == "failed"
    listed = await (await client.get(url, headers=AUTH)).json()
    assert listed["items"] == []


async def test_a_run_may_wait_for_a_setup_under_way_but_not_start(client, tmp_path):
    repos = make_repos(tmp_path / "repos")
    svc = client.app[SERVICES]
    project = await project_service.register_project(svc, name="demo", local_path=str(repos.local))
    url = f"/projects/{project.id}/protocols"
    created = await client.post(url, json={"title": "Add login"}, headers=AUTH)
    assert created.status == 201, await created.text()
    started = await client.post(url, json={"title": "Add signup", "start": True}, headers=AUTH)
    assert started.status == 409
    assert "its setup is under way" in (await started.json())["error"]["message"]
