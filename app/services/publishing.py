"""Publishing a finished protocol: push its branch; without a forge to wait on, the run is complete."""

from __future__ import annotations

from app.domain.records import ProtocolRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services.context import Services
from app.services.execution import block_run, push_branch, record_push
from app.services.workspace import ensure_worktree
from app.store import projects, protocols, steps
from app.store.transitions import move_protocol


async def open_pr(svc: Services, run_id: int) -> ProtocolRun:
    """Push the branch; when every step is completed, the run completes (forges will wait for a merge)."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
    if run.status in (P.CANCELLED, P.FAILED, P.COMPLETED):
        return run
    worktree = await ensure_worktree(svc, project, run, discard=False)  # reads or pushes commits only
    pushed = await push_branch(svc, worktree, run)
    sha = await worktree.head_sha()
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run.id)
        if pushed:
            await record_push(conn, run, sha)
        plan = await steps.list_for_protocol(conn, run.id)
        if run.status is P.RUNNING and plan and all(s.status is S.COMPLETED for s in plan):
            run = await move_protocol(
                conn,
                run.id,
                P.COMPLETED,
                expected_version=run.version,
                reason="all steps completed",
                payload={"pushed": pushed, "sha": sha},
            )
    return run


async def fail_publishing(svc: Services, run_id: int, reason: str, *, terminal: bool = False) -> None:
    """Publishing gave up: the run is blocked until an operator looks (retrying may well work)."""
    async with svc.database.transaction() as conn:
        await block_run(conn, run_id, f"publishing failed: {reason}")
