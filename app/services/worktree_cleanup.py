"""Worktrees of finished runs, removed from this machine's disk once `worktree_retention_hours` have
passed since the run finished. The branch stays (locally, on the remote, and as bundles in the
database): a run that gets more work later has its worktree rebuilt by the next job
(app.services.workspace.ensure_worktree), so nothing is lost by removing one.

Worktrees live on each machine's own disk, so every worker process tidies its own projects root; two
processes sharing a root take the clone's advisory lock in turn, and a second removal finds nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.domain.workspace import WORKTREES_DIR, protocol_worktree_path
from app.errors import ConflictError
from app.logs import get_logger
from app.services.context import Services
from app.services.events import record
from app.services.workspace import existing_repository
from app.store import projects, protocols

log = get_logger(__name__)


def worktrees_on_disk(projects_root: Path) -> dict[str, list[str]]:
    """The worktree folders under the projects root: project name → run names."""
    found: dict[str, list[str]] = {}
    if not projects_root.is_dir():
        return found
    for project in projects_root.iterdir():
        folder = project / WORKTREES_DIR
        if folder.is_dir():
            names = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
            if names:
                found[project.name] = names
    return found


async def remove_finished_worktrees(svc: Services, *, now: datetime | None = None) -> int:
    """Remove the worktrees of runs finished more than the retention ago; how many were removed."""
    hours = svc.settings.worktree_retention_hours
    if hours <= 0:
        return 0
    root = svc.settings.resolved_projects_root
    before = (now or datetime.now(UTC)) - timedelta(hours=hours)
    removed = 0
    for project_name, run_names in (await asyncio.to_thread(worktrees_on_disk, root)).items():
        async with svc.database.read() as conn:
            finished = await protocols.finished_before(conn, project_name, run_names, before)
            project = await projects.get(conn, finished[0].project_id) if finished else None
        if project is None:
            continue
        try:
            clone = existing_repository(svc, project)
        except ConflictError:  # its clone is gone from this disk: nothing here can remove them
            log.warning("worktrees of a project without its clone left in place", project=project.name)
            continue
        for run in finished:
            path = protocol_worktree_path(root, project.name, run.name)
            async with svc.database.advisory_lock(f"repo:{clone.path}"):
                if not path.exists():
                    continue  # another process of this machine removed it meanwhile
                await clone.worktree_remove(path, force=True)
            async with svc.database.transaction() as conn:
                await record(
                    conn,
                    project.id,
                    "worktree.removed",
                    f"worktree of {run.name} removed from {svc.settings.machine} (its branch stays)",
                    run=run,
                    machine=svc.settings.machine,
                    finished_at=run.finished_at.isoformat() if run.finished_at else None,
                )
            removed += 1
    if removed:
        log.info("removed worktrees of finished runs", count=removed)
    return removed
