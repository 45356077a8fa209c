"""Two projects never collide: not in one folder, not on one remote (branches carry the project)."""

from __future__ import annotations

import asyncio
import os

import pytest

from app.errors import ConflictError
from app.services import planning, projects
from tests.support.workflow import (
    git,
    make_repos,
    project_ready,
    run_status,
    running_worker,
    wait_for,
    workflow_settings,
)


async def test_two_projects_on_one_remote_push_different_branches(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        made = [
            await projects.register_project(svc, name=name, git_url=f"file://{repos.origin}")
            for name in ("alpha", "beta")
        ]
        for project in made:
            await wait_for(lambda p=project: project_ready(svc, p.id), what="setup")
        runs = [await planning.create_protocol(svc, p.id, title="Same title") for p in made]
        await asyncio.gather(*(planning.start_protocol(svc, r.id) for r in runs))
        for run in runs:

            async def done(run_id=run.id):
                return await run_status(svc, run_id) == "completed"

            await wait_for(done, what="both runs to complete")
    heads = git("--git-dir", str(repos.origin), "for-each-ref", "--format=%(refname:short)", "refs/heads/")
    assert set(heads.split()) == {
        "main",
        "tasksgodzilla/alpha/0001-same-title",
        "tasksgodzilla/beta/0001-same-title",
    }


async def test_without_the_project_in_the_pattern_a_shared_remote_is_refused(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, branch_pattern="{name}")
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        await projects.register_project(svc, name="alpha", git_url=f"file://{repos.origin}")
        with pytest.raises(ConflictError, match="'alpha' uses this git URL already") as refused:
            await projects.register_project(svc, name="beta", git_url=f"file://{repos.origin}")
    assert refused.value.details["field"] == "git_url"
