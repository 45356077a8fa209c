"""A project registered by local path: its repository's config and its origin are checked like
everything else, at registration and again by every job (the folder can change in between)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.domain.records import ProjectStatus
from app.errors import InvalidInputError
from app.services import projects
from app.store import events
from app.store import projects as project_store
from tests.support.workflow import git, make_repos, running_worker, wait_for, workflow_settings


def hostile(marker: Path) -> list[tuple[str, ...]]:
    """Settings that would each make our git run `touch marker`."""
    return [
        ("config", "filter.evil.clean", f"touch {marker}; cat"),
        ("config", "core.sshCommand", f"touch {marker}; false"),
        ("config", "url.ext::sh -c touch% x #.insteadOf", "https://h/"),
        ("config", "include.path", str(marker.parent / "other.gitconfig")),
    ]


async def test_registration_refuses_a_repository_that_names_programs_or_a_bad_origin(database_url, tmp_path):
    settings = workflow_settings(tmp_path, git_allow_local_remotes=False)
    marker = tmp_path / "marker"
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        for number, setting in enumerate(hostile(marker)):
            repos = make_repos(tmp_path / f"r{number}")
            git("remote", "remove", "origin", cwd=repos.local)
            git(*setting, cwd=repos.local)
            with pytest.raises(InvalidInputError, match="git config") as refused:
                await projects.register_project(svc, name=f"p{number}", local_path=str(repos.local))
            assert refused.value.details["field"] == "local_path"
        for number, origin in enumerate(["ext::sh -c touch% x", "http://h/x.git", "/srv/other.git"]):
            repos = make_repos(tmp_path / f"o{number}")
            git("remote", "set-url", "origin", origin, cwd=repos.local)
            with pytest.raises(InvalidInputError, match="remote 'origin'") as refused:
                await projects.register_project(svc, name=f"o{number}", local_path=str(repos.local))
            assert refused.value.details["field"] == "local_path"
        async with svc.database.transaction() as conn:
            assert await project_store.list_page(conn) == []
    assert not marker.exists()


async def test_a_repository_turned_hostile_after_registration_fails_setup_for_good(database_url, tmp_path):
    repos = make_repos(tmp_path)
    marker = tmp_path / "marker"
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        git("config", "commit.gpgSign", "true", cwd=repos.local)  # inert: allowed
        made = await projects.register_project(svc, name="turned", local_path=str(repos.local))
        git("config", "filter.evil.smudge", f"touch {marker}; cat", cwd=repos.local)

        async def failed():
            """The project failed and its job said why (the job's event follows the status change)."""
            async with svc.database.transaction() as conn:
                project = await project_store.get(conn, made.id)
                said = await events.list_page(conn, project_id=made.id, event_types=["job.gave_up"])
            return project.status is ProjectStatus.FAILED and len(said) > 0

        await wait_for(failed, what="setup to refuse the repository")
        async with svc.database.transaction() as conn:
            [gave_up] = await events.list_page(conn, project_id=made.id, event_types=["job.gave_up"])
    assert "filter.evil.smudge" in gave_up.payload["error"]
    assert gave_up.payload["terminal"] is True
    assert not marker.exists()
