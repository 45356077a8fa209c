"""Publishing a finished protocol: push its branch; open its PR/MR when the project has a forge (the
run then completes when the merge webhook arrives), else the run is complete."""

from __future__ import annotations

from app.domain.records import ProtocolRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import InvalidInputError
from app.services.context import Services
from app.services.execution import block_run, push_branch, record_push
from app.services.forges import has_forge, publish_pull_request
from app.services.workspace import worktree_at_head
from app.store import projects, protocols, steps
from app.store.transitions import move_protocol


async def open_pr(svc: Services, run_id: int) -> ProtocolRun:
    """Push the branch; when every step is completed, open the PR/MR (forge) or complete the run."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
    if run.status in (P.CANCELLED, P.FAILED, P.COMPLETED):
        return run
    # Reads or pushes commits only: no reset; where HEAD is, as the check of the worktree read it.
    worktree, head = await worktree_at_head(svc, project, run, discard=False)
    pushed = await push_branch(svc, worktree, run)
    sha = head or await worktree.head_sha()
    with_forge = has_forge(svc.settings, project)
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run.id)
        if pushed:
            await record_push(conn, run, sha)
        plan = await steps.list_for_protocol(conn, run.id)
        finished = run.status is P.RUNNING and bool(plan) and all(s.status is S.COMPLETED for s in plan)
        if finished and not with_forge:
            run = await move_protocol(
                conn,
                run.id,
                P.COMPLETED,
                expected_version=run.version,
                reason="all steps completed",
                payload={"pushed": pushed, "sha": sha},
            )
    if not (finished and with_forge):
        return run
    if not pushed:
        raise InvalidInputError(
            f"{run.branch_name} cannot be proposed for merging: there is no origin remote"
        )
    return await publish_pull_request(svc, project, run, plan, sha)


async def fail_publishing(svc: Services, run_id: int, reason: str, *, terminal: bool = False) -> None:
    """Publishing gave up: the run is blocked until an operator looks (retrying may well work)."""
    async with svc.database.transaction() as conn:
        await block_run(conn, run_id, f"publishing failed: {reason}")
