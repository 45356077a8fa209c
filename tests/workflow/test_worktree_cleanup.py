"""Worktrees of finished runs leave this machine's disk after the retention; their branches stay, and
a run that gets more work has its worktree rebuilt."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.domain.statuses import ProtocolStatus as P
from app.domain.workspace import protocol_worktree_path
from app.services import planning, projects
from app.services.workspace import ensure_worktree, existing_repository
from app.services.worktree_cleanup import remove_finished_worktrees
from app.store import events, protocols
from app.store import projects as project_store
from tests.support.workflow import make_repos, running_worker, wait_for, workflow_settings


async def test_a_finished_runs_worktree_goes_after_the_retention_and_comes_back_when_needed(
    database_url, tmp_path
):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path).model_copy(update={"worktree_retention_hours": 24})
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))

        async def ready():
            async with svc.database.transaction() as conn:
                return (await project_store.get(conn, project.id)).status == "ready"

        await wait_for(ready, what="project setup")
        project = await _project(svc, project.id)
        done = await planning.create_protocol(svc, project.id, title="Write two parts")
        await planning.start_protocol(svc, done.id)

        async def completed():
            async with svc.database.transaction() as conn:
                return (await protocols.get(conn, done.id)).status is P.COMPLETED

        await wait_for(completed, what="the run to complete")
        async with svc.database.transaction() as conn:
            done = await protocols.get(conn, done.id)
        # A run still pending (never started) has no worktree; a made-up folder of an unfinished one stays.
        open_run = await planning.create_protocol(svc, project.id, title="Still open")
        root = settings.resolved_projects_root
        finished_tree = protocol_worktree_path(root, project.name, done.name)
        open_tree = protocol_worktree_path(root, project.name, open_run.name)
        open_tree.mkdir(parents=True)
        assert finished_tree.is_dir()

        assert await remove_finished_worktrees(svc) == 0, "finished just now: within the retention"
        assert finished_tree.is_dir()

        later = datetime.now(UTC) + timedelta(hours=25)
        assert await remove_finished_worktrees(svc, now=later) == 1
        assert not finished_tree.exists()
        assert open_tree.is_dir()
        clone = existing_repository(svc, project)
        assert await clone.has_branch(done.branch_name)
        assert await remove_finished_worktrees(svc, now=later) == 0  # nothing left to remove
        async with svc.database.transaction() as conn:
            [removed] = await events.list_page(
                conn, protocol_run_id=done.id, event_types=["worktree.removed"]
            )
        assert removed.payload["machine"] == settings.machine

        # More work on the run later: its worktree is made again at the run's head.
        tree = await ensure_worktree(svc, project, done)
        assert tree.path == finished_tree
        assert await tree.head_sha() == done.head_sha

        kept = replace(svc, settings=settings.model_copy(update={"worktree_retention_hours": 0}))
        assert await remove_finished_worktrees(kept, now=later + timedelta(days=365)) == 0
        assert finished_tree.is_dir()


async def _project(svc, project_id):
    async with svc.database.transaction() as conn:
        return await project_store.get(conn, project_id)
