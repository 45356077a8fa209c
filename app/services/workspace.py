"""Repositories and worktrees of projects and protocol runs: made on demand, serialised per repository."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.config import Settings
from app.config_paths import home_folder
from app.domain.records import Project, ProtocolRun
from app.domain.visible import check_visible_text
from app.domain.workspace import project_repo_path, protocol_branch_name, protocol_worktree_path
from app.engines.process import kill_processes_in
from app.errors import ConflictError, InvalidInputError
from app.git import GitRepository
from app.git.remote_guard import RemoteGuard
from app.logs import get_logger
from app.services.context import Services
from app.services.credentials import credential_source
from app.services.travel import bring_head, catch_up

log = get_logger(__name__)
# Never a project's folder, whatever the roots say: kernel and device views, not repositories.
SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


def remote_guard(settings: Settings) -> RemoteGuard:
    """The remote policy of every repository: what may be a remote, checked before each remote call."""
    return RemoteGuard(
        allow_local=settings.git_allow_local_remotes, allow_private=settings.git_allow_private_remotes
    )


def repository_at(svc: Services, path: Path, project: Project) -> GitRepository:
    """The project's repository (or one of its worktrees) at `path`: its origin must stay the
    project's git URL, and only remote calls get the project's credential."""
    settings = svc.settings
    return GitRepository(
        path,
        timeout=settings.git_timeout_seconds,
        author_name=settings.git_user_name,
        author_email=settings.git_user_email,
        allow_local_remotes=settings.git_allow_local_remotes,
        base_env=svc.git_env,
        remote_url=project.git_url,
        credentials=credential_source(svc, project),
        remote_guard=remote_guard(settings),
    )


def repository_path(project: Project, settings: Settings) -> Path:
    """Where the project's repository is on this machine: the local path it was registered with
    (checked again: a path can change), else its clone under this machine's projects root, a place
    derived here and never stored (another machine has its own projects root)."""
    if project.local_path:
        return checked_local_path(settings, project.local_path)
    return project_repo_path(settings.resolved_projects_root, project.name)


def checked_local_path(settings: Settings, local_path: str) -> Path:
    """`local_path` with symlinks resolved, refused (InvalidInputError naming `local_path`) unless
    absolute, free of `..`, inside a folder of TASKSGODZILLA_LOCAL_PATH_ROOTS, and clear of the
    service's own folders; checked at registration and again at every use."""
    check_visible_text(local_path, field="local_path")
    path = Path(local_path)
    if not path.is_absolute() or ".." in path.parts:
        raise InvalidInputError(
            "local_path must be absolute (from /) and without '..': give the folder's full path",
            field="local_path",
        )
    real = path.resolve()
    roots = home_folder() if settings.local_path_roots is None else settings.local_path_roots
    if not roots:
        raise InvalidInputError(
            "projects cannot be registered by local path here (TASKSGODZILLA_LOCAL_PATH_ROOTS is empty): "
            "name the allowed folders in it, or register the project by its git URL",
            field="local_path",
        )
    if not any(real.is_relative_to(root.resolve()) for root in roots):
        raise InvalidInputError(
            "the local path is outside the allowed folders: add its folder to "
            "TASKSGODZILLA_LOCAL_PATH_ROOTS (comma-separated), or register the project by its git URL",
            field="local_path",
        )
    if any(where.is_relative_to(system) for where in (path, real) for system in SYSTEM_FOLDERS):
        raise InvalidInputError(
            "the local path must not be in /proc, /sys or /dev: give the repository's folder",
            field="local_path",
        )
    for own in (settings.data_dir.resolve(), settings.resolved_projects_root.resolve(), *SYSTEM_FOLDERS):
        if real.is_relative_to(own) or own.is_relative_to(real):
            raise InvalidInputError(
                f"the local path must not be, hold or lie inside {own} (the service's own or the "
                "system's): give a repository folder of its own, outside it",
                field="local_path",
            )
    return real


async def ensure_clone(svc: Services, project: Project) -> GitRepository:
    """The project's repository, cloned from its git URL the first time."""
    path = repository_path(project, svc.settings)
    if (path / ".git").exists():
        return repository_at(svc, path, project)
    if project.git_url is None:
        raise InvalidInputError(f"{path} is not a git repository", field="local_path")
    async with svc.database.advisory_lock(f"repo:{path}"):
        if (path / ".git").exists():  # another worker cloned it while we waited
            return repository_at(svc, path, project)
        return await GitRepository.clone(
            project.git_url,
            path,
            timeout=svc.settings.git_timeout_seconds,
            author_name=svc.settings.git_user_name,
            author_email=svc.settings.git_user_email,
            allow_local_remotes=svc.settings.git_allow_local_remotes,
            base_env=svc.git_env,
            credentials=credential_source(svc, project),
            remote_guard=remote_guard(svc.settings),
        )


def branch_for(svc: Services, project: Project, run: ProtocolRun) -> str:
    slug = run.name.split("-", 1)[1]
    return protocol_branch_name(
        svc.settings.branch_pattern, number=run.number, slug=slug, project=project.name
    )


async def ensure_worktree(
    svc: Services, project: Project, run: ProtocolRun, *, discard: bool = True
) -> GitRepository:
    """The run's worktree, ready (worktree_at_head)."""
    worktree, _ = await worktree_at_head(svc, project, run, discard=discard)
    return worktree


async def worktree_at_head(
    svc: Services, project: Project, run: ProtocolRun, *, discard: bool = True
) -> tuple[GitRepository, str | None]:
    """The run's worktree on its branch at (or ahead of) the run's recorded head: made from the base
    branch, re-attached after a restart, or rebuilt on any machine from the bundles the database keeps
    (app.services.travel).

    Changes left uncommitted by an interrupted job are discarded (`discard`): the branch is the state
    that counts, and no commit on it is ever dropped. Jobs that only read or push the committed branch
    may skip that reset. A branch that lost the run's recorded head is a ConflictError. One `git
    status` says both where HEAD is and whether anything is left to discard (reset and clean run
    only then); without `discard`, one `rev-parse`. Returned with the commit HEAD is on, when it was
    read (None: no recorded head to check, nothing to discard).
    """
    path = protocol_worktree_path(svc.settings.resolved_projects_root, project.name, run.name)
    branch = run.branch_name or branch_for(svc, project, run)
    if (path / ".git").exists():
        worktree = repository_at(svc, path, project)
    else:
        clone = await ensure_clone(svc, project)
        async with svc.database.advisory_lock(f"repo:{clone.path}"):
            # Another machine may have made the run's commits: they travel in the database.
            await bring_head(svc, clone, run)
            worktree = await clone.worktree_add(path, branch, run.head_sha or run.base_branch)
    orphans = await asyncio.to_thread(kill_processes_in, worktree.path)
    if orphans:
        log.warning("killed processes left in the worktree by a dead job", count=orphans, run=run.name)
    head: str | None = None
    if discard:
        state = await worktree.state()
        if not state.clean:
            await worktree.discard_changes()  # the working tree only: HEAD stays where it is
        head = state.head
    if run.head_sha:
        head = await catch_up(svc, worktree, run, head or await worktree.head_sha())
        await _check_head(worktree, run, head)
    return worktree, head


async def _check_head(worktree: GitRepository, run: ProtocolRun, head: str) -> None:
    """The branch (at `head`) must hold the run's recorded head: it may be ahead (a step committed,
    then its job died before recording it), never behind or beside it, or work would be built on a
    lost commit."""
    assert run.head_sha is not None
    if head != run.head_sha and not await worktree.is_ancestor(run.head_sha, head):
        raise ConflictError(
            f"branch {run.branch_name} is at {head[:12]}, which does not contain the run's recorded "
            f"head {run.head_sha[:12]}: restore the branch before retrying",
            head=head,
            recorded_head=run.head_sha,
        )


def existing_repository(svc: Services, project: Project) -> GitRepository:
    """The project's repository; a ConflictError while there is none yet (not set up, or not a repository)."""
    path = repository_path(project, svc.settings)
    if not (path / ".git").exists():
        raise ConflictError(
            f"project {project.name} has no repository at {path} yet (status {project.status})",
            field="project_id",
        )
    return repository_at(svc, path, project)
