"""Setup configures the repository's git identity and origin only when the operator asks
(TASKSGODZILLA_SETUP_GIT_CONFIG; plan 4.4)."""

from __future__ import annotations

import os
import subprocess

from app.services import projects
from tests.support.workflow import git, make_repos, project_ready, running_worker, wait_for, workflow_settings


def _config(repo, key: str) -> str | None:
    found = subprocess.run(
        ["git", "config", "--local", "--get", key], cwd=repo, capture_output=True, text=True, check=False
    )
    return found.stdout.strip() if found.returncode == 0 else None


async def test_asked_setup_writes_the_identity_and_points_the_folders_origin_at_the_git_url(
    database_url, tmp_path
):
    repos = make_repos(tmp_path)
    git("remote", "remove", "origin", cwd=repos.local)  # a folder with no origin yet
    settings = workflow_settings(
        tmp_path, setup_git_config=True, git_user_name="Godzilla Bot", git_user_email="bot@example.test"
    )
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        made = await projects.register_project(
            svc, name="demo", local_path=str(repos.local), git_url=str(repos.origin)
        )
        await wait_for(lambda: project_ready(svc, made.id), what="setup")
    assert _config(repos.local, "user.name") == "Godzilla Bot"
    assert _config(repos.local, "user.email") == "bot@example.test"
    assert _config(repos.local, "remote.origin.url") == str(repos.origin)


async def test_unasked_setup_leaves_the_operators_folder_as_it_was(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        made = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, made.id), what="setup")
    assert _config(repos.local, "user.name") is None
    assert _config(repos.local, "remote.origin.url") == str(repos.origin)
