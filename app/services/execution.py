"""Executing one step: the agent edits the worktree, we commit the result with the step's tag and push it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import CiResult, ci_fix_instructions, redo_after_ci_failure
from app.domain.commits import format_step_commit
from app.domain.records import Project, ProtocolRun, Stage, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import AgentError
from app.git import GitRepository
from app.services.agents import run_step_agent
from app.services.budgets import check_budget
from app.services.context import Services
from app.services.events import record
from app.services.progress import defer_next_work
from app.services.workspace import ensure_worktree
from app.store import projects, protocols, steps
from app.store.transitions import move_protocol, move_step


async def execute_step(svc: Services, step_id: int) -> StepRun:
    """Run a pending step (or resume one a dead worker left running), commit, push, hand it to QA."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        run = await protocols.get(conn, step.protocol_run_id)
        project = await projects.get(conn, run.project_id)
        if run.status is not P.RUNNING or step.status not in (S.PENDING, S.RUNNING):
            return step  # paused, cancelled, or done meanwhile
        if step.status is S.PENDING:
            step = await move_step(conn, step.id, S.RUNNING, expected_version=step.version)
    worktree = await ensure_worktree(svc, project, run)
    # A commit carrying this step's tag means a previous attempt got that far: never commit twice.
    sha = await worktree.find_step_commit(run.number, step.step_index)
    if sha is None or redo_after_ci_failure(step, sha):  # CI failed on that commit: work again
        await check_budget(svc, project, run, step)
        await _run_agent(svc, project, run, step, worktree)
        message = format_step_commit("feat", step.name, number=run.number, step_index=step.step_index)
        sha = await worktree.commit_all(message)
        if sha is None:
            raise AgentError("the agent finished without changing anything")
    stats = await worktree.diff_stats(run.head_sha or f"{sha}^", sha)
    pushed = await push_branch(svc, worktree, run)
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step.id)
        fresh = {"ci_status": None} if sha != step.commit_sha else {}  # CI has not seen a new commit
        step = await move_step(
            conn, step.id, S.NEEDS_QA, expected_version=step.version, changes={"commit_sha": sha, **fresh}
        )
        run = await protocols.get(conn, run.id)
        await protocols.update_fields(conn, run.id, expected_version=run.version, head_sha=sha)
        await record(
            conn,
            project.id,
            "step.committed",
            f"step {step.step_index} committed {sha[:12]}",
            step=step,
            sha=sha,
            files=stats.paths,
            insertions=stats.insertions,
            deletions=stats.deletions,
        )
        if pushed:
            await record_push(conn, run, sha)
    await defer_next_work(svc, run.id)
    return step


async def _run_agent(
    svc: Services, project: Project, run: ProtocolRun, step: StepRun, worktree: GitRepository
) -> None:
    _, result = await run_step_agent(
        svc,
        step,
        project=project,
        run=run,
        stage=Stage.EXECUTION,
        workdir=worktree.path,
        extra_instructions=ci_fix_instructions(step) if step.ci_status == CiResult.FAILED else "",
    )
    if not result.succeeded:
        raise AgentError(f"execution agent {result.status}: {result.error or 'no detail'}")


async def push_branch(svc: Services, worktree: GitRepository, run: ProtocolRun) -> bool:
    """Push the protocol branch to `origin` when there is one (CI then tests this exact commit)."""
    if not run.branch_name or not await worktree.has_remote("origin"):
        return False
    await worktree.push(run.branch_name)
    return True


async def record_push(conn: AsyncConnection, run: ProtocolRun, sha: str) -> None:
    """The event saying the protocol branch now points at `sha` on origin."""
    await record(
        conn,
        run.project_id,
        "branch.pushed",
        f"pushed {run.branch_name} at {sha[:12]}",
        run=run,
        remote="origin",
        branch=run.branch_name,
        sha=sha,
    )


async def fail_step(svc: Services, step_id: int, reason: str, *, terminal: bool) -> None:
    """A step's job gave up: the step is failed (terminal) or blocked, and so is its run."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        target = S.FAILED if terminal else S.BLOCKED
        if step.status in (S.RUNNING, S.NEEDS_QA):
            step = await move_step(
                conn,
                step.id,
                target,
                expected_version=step.version,
                reason=reason,
                changes={"last_error": reason[:2000]},
            )
        await block_run(conn, step.protocol_run_id, reason)


async def block_run(conn: AsyncConnection, protocol_run_id: int, reason: str) -> None:
    """Block a run that is still moving (its job failed for good)."""
    run = await protocols.get(conn, protocol_run_id)
    if run.status in (P.RUNNING, P.PLANNING, P.PAUSED):
        await move_protocol(
            conn,
            run.id,
            P.BLOCKED,
            expected_version=run.version,
            reason=reason,
            changes={"last_error": reason[:2000]},
        )
