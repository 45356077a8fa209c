"""Where a project's repository is: a registered local path (inside TASKSGODZILLA_LOCAL_PATH_ROOTS), or
a clone whose place each machine derives from its own projects root and never stores."""

from __future__ import annotations

import os

import pytest

from app.domain.records import ProjectStatus
from app.domain.statuses import ProtocolStatus
from app.errors import InvalidInputError
from app.services import planning, projects
from app.store import events, protocols
from app.store import projects as project_store
from tests.support.workflow import git, make_repos, running_worker, wait_for, workflow_settings


async def test_a_cloned_project_runs_while_local_path_roots_are_set(database_url, tmp_path):
    repos = make_repos(tmp_path)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    # The projects root (under the data dir) is outside the roots: a clone must work all the same.
    settings = workflow_settings(tmp_path, local_path_roots=[allowed])
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        made = await projects.register_project(svc, name="cloned", git_url=str(repos.origin))

        async def project():
            async with svc.database.transaction() as conn:
                return await project_store.get(conn, made.id)

        await wait_for(lambda: _is(project, ProjectStatus.READY), what="the clone")
        assert (await project()).local_path is None  # derived on each machine, never stored
        run = await planning.create_protocol(svc, made.id, title="Write two parts")
        await planning.start_protocol(svc, run.id)

        async def finished():
            async with svc.database.transaction() as conn:
                current = await protocols.get(conn, run.id)
            return current if current.status in {ProtocolStatus.COMPLETED, ProtocolStatus.FAILED} else None

        done = await wait_for(finished, what="the run to end")
        async with svc.database.transaction() as conn:
            [ready] = await events.list_page(conn, project_id=made.id, event_types=["project.ready"])
    assert done.status is ProtocolStatus.COMPLETED, done
    clone = tmp_path / "data" / "projects" / "cloned" / "repo"
    assert ready.payload["local_path"] == str(clone)  # where it was, said in the event only
    assert git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{done.branch_name}") == done.head_sha


async def _is(read, status):
    return (await read()).status is status


async def test_a_local_path_whose_origin_is_forbidden_is_refused(database_url, tmp_path):
    repos = make_repos(tmp_path)
    git("remote", "set-url", "origin", "https://169.254.169.254/latest.git", cwd=repos.local)
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        with pytest.raises(InvalidInputError, match="metadata") as refused:
            await projects.register_project(svc, name="meta", local_path=str(repos.local))
        async with svc.database.read() as conn:
            assert await project_store.list_page(conn) == []
    assert refused.value.details["field"] == "local_path"
