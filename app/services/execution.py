"""Executing one step: the agent edits the worktree, we commit the result with the step's tag and push it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import prompts
from app.domain.agents import AgentResult
from app.domain.commits import format_step_commit, with_correlation
from app.domain.policy_prompt import execution_requirements
from app.domain.qa import Verdict
from app.domain.records import Project, ProtocolRun, Stage, StepRun
from app.domain.rework import must_work_again, rework_instructions
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import AgentError
from app.git import DiffStats, GitRepository
from app.services.agents import Subject, redactor_for, run_step_agent
from app.services.context import Services
from app.services.credentials import prefetch_git_credential
from app.services.events import record
from app.services.findings import record_step_review, review_step
from app.services.policy import policy_for_run, prefetch_run_policy
from app.services.progress import defer_next_work
from app.services.reviews import settle_review
from app.services.rework_context import rework_context
from app.services.travel import keep_head, pack_head
from app.services.workspace import ensure_worktree
from app.store import events, protocols, steps
from app.store.transitions import move_protocol, move_step


async def execute_step(svc: Services, step_id: int) -> StepRun:
    """Run a pending step (or resume one a dead worker left running), commit, push, hand it to QA."""
    async with svc.database.transaction() as conn:
        step, run, project = await steps.get_in_context(conn, step_id)
        if run.status is not P.RUNNING or step.status not in (S.PENDING, S.RUNNING):
            return step  # paused, cancelled, or done meanwhile
        await prefetch_job_reads(svc, conn, run.id, project.id)
        lease = uuid.uuid4().hex  # this execution's; a takeover (a retried job) writes its own
        if step.status is S.PENDING:
            if step.attempts >= svc.settings.step_max_attempts:
                return await _give_up_attempts(conn, svc, step)
            step = await move_step(
                conn,
                step.id,
                S.RUNNING,
                expected_version=step.version,
                changes={"lease": lease},
                project_id=project.id,
            )
        else:
            step = await steps.update_fields(conn, step.id, expected_version=step.version, lease=lease)
        qa = await _failed_verdict(conn, step)
        more = await rework_context(conn, svc, step)  # a failed CI job's log, review comments to answer
    worktree = await ensure_worktree(svc, project, run)
    # A commit carrying this step's tag means a previous attempt got that far: never commit twice,
    # unless that very commit was rejected (CI, QA) or the operator asked for another go.
    sha = await worktree.find_step_commit(run.number, step.step_index)
    worked = sha is None or must_work_again(step, sha) or more.review is not None
    result: AgentResult | None = None
    stats: DiffStats | None = None  # what the commit changed, when this attempt made it
    if worked:
        # Policy findings (issue 14): the step file before its agent runs; strict mode may block it.
        if (stopped := await _policy_gate(svc, run, step, worktree)) is not None:
            return stopped
        instructions = "\n\n".join(p for p in (rework_instructions(step, qa), more.instructions) if p)
        result = await _run_agent(svc, project, run, step, worktree, instructions, more.output_schema)
        number, index = run.number, step.step_index
        scrubbed: dict[str, list[str]] = {}  # path → names of the secrets found in the file
        redactor = await redactor_for(svc, Subject(project.id, run.id, step.id))

        def scrub(path: str, data: bytes) -> bytes | None:
            # What the agent wrote is output too: no known secret is committed (or pushed).
            clean, names = redactor.scan_file(data)
            if names:
                scrubbed[path] = sorted(names)
            return clean

        async with svc.database.transaction() as conn:
            # A worker that froze while its job was taken over must not commit over the new owner.
            await steps.hold_lease(conn, step.id, lease)
            cid = run.correlation_id
            sha, stats = await worktree.commit_all_with_stats(
                with_correlation(format_step_commit("feat", step.name, number=number, step_index=index), cid),
                # An agent that rightly changed nothing (a verification step) still leaves the
                # step's commit: QA judges it, CI tests it, and a retried job finds it.
                empty_message=with_correlation(
                    format_step_commit("chore", f"{step.name} (no changes)", number=number, step_index=index),
                    cid,
                ),
                scrub=scrub if redactor else None,
            )
            if scrubbed:
                await record(
                    conn,
                    project.id,
                    "step.secrets_scrubbed",
                    f"step {index}: known secrets taken out of {len(scrubbed)} file(s) before the commit",
                    step=step,
                    files=scrubbed,
                )
    assert sha is not None
    # The head only moves forward: a fresh commit sits on top of it; a found one is checked.
    advances = worked or run.head_sha is None or await worktree.is_ancestor(run.head_sha, sha)
    if stats is None:  # a commit an earlier attempt made
        stats = await worktree.diff_stats(f"{sha}^", sha)
    # Policy findings (issue 14): what the step did (checks run, paths touched, artifacts), before QA.
    done = {"commands_passed": result.commands_passed if result else None, "files_changed": stats.paths}
    if (stopped := await _policy_gate(svc, run, step, worktree, ran=True, **done)) is not None:
        return stopped
    moves_head = advances and sha != run.head_sha
    travelling = await pack_head(worktree, run, sha) if moves_head else None
    pushed = await push_branch(svc, worktree, run)
    async with svc.database.transaction() as conn:
        step, run, _ = await steps.get_in_context(conn, step.id)  # as they are now, in one read
        changes: dict[str, object] = {"commit_sha": sha}
        if sha != step.commit_sha:  # neither CI nor QA has seen this commit
            changes |= {"ci_status": None, "qa_verdict": None}
        if worked:
            changes["operator_note"] = None  # the note was this attempt's
            changes["prompt_version"] = prompts.load("execution").version  # what its agent was told
        step = await move_step(
            conn, step.id, S.NEEDS_QA, expected_version=step.version, changes=changes, project_id=project.id
        )
        if advances and sha != run.head_sha:
            run = await protocols.update_fields(conn, run.id, expected_version=run.version, head_sha=sha)
            if travelling is not None:
                await keep_head(conn, run, travelling)
        await record(
            conn,
            project.id,
            "step.committed",
            f"step {step.step_index} committed {sha[:12]}" + ("" if stats.files else " (no changes)"),
            step=step,
            sha=sha,
            files=stats.paths,
            insertions=stats.insertions,
            deletions=stats.deletions,
            unchanged=not stats.files,
        )
        if pushed:
            await record_push(conn, run, sha)
        moved = False
        if result is not None:  # answers to review comments; reviews that came meanwhile
            output = result.structured_output
            moved = await settle_review(svc, conn, run, step, more.review, output, sha=sha, pushed=pushed)
        # The run as this transaction left it (read again when a review round may have moved it).
        await defer_next_work(svc, conn, run.id, run=None if moved else run)
    return step


async def prefetch_job_reads(svc: Services, conn: AsyncConnection, run_id: int, project_id: int) -> None:
    """What a step's job reads again later (the run's recorded policy, the project's credential),
    read on the connection of its first transaction: no read of its own each."""
    await prefetch_run_policy(conn, run_id)
    await prefetch_git_credential(svc, conn, project_id)


async def _failed_verdict(conn: AsyncConnection, step: StepRun) -> dict[str, Any] | None:
    """The payload of the QA verdict that failed the step, when QA failed it (for the rework prompt)."""
    if step.qa_verdict != Verdict.FAIL:
        return None
    found = await events.recent(conn, step_run_id=step.id, type_prefix="qa.verdict", limit=1)
    return found[0].payload if found else None


async def _give_up_attempts(conn: AsyncConnection, svc: Services, step: StepRun) -> StepRun:
    limit = svc.settings.step_max_attempts
    reason = (
        f"step {step.step_index} was tried {step.attempts} times "
        f"(TASKSGODZILLA_STEP_MAX_ATTEMPTS={limit}); approve it or raise the limit"
    )
    step = await move_step(
        conn, step.id, S.FAILED, expected_version=step.version, reason=reason, changes={"last_error": reason}
    )
    await block_run(conn, step.protocol_run_id, reason)
    return step


async def _run_agent(
    svc: Services,
    project: Project,
    run: ProtocolRun,
    step: StepRun,
    worktree: GitRepository,
    instructions: str,
    output_schema: dict[str, Any] | None = None,
) -> AgentResult:
    _, result = await run_step_agent(
        svc,
        step,
        project=project,
        run=run,
        stage=Stage.EXECUTION,
        workdir=worktree.path,
        extra_instructions=instructions,
        output_schema=output_schema,
        policy_requirements=execution_requirements((await policy_for_run(svc, run.id)).policy),
    )
    if not result.succeeded:
        raise AgentError(f"execution agent {result.status}: {result.error or 'no detail'}")
    return result


async def _policy_gate(
    svc: Services, run: ProtocolRun, step: StepRun, worktree: GitRepository, **what: Any
) -> StepRun | None:
    """Record the step's policy findings; the step, blocked, when strict mode lets one block it."""
    found, blocker = await review_step(svc, run, step, worktree.path, **what)
    if not found:  # nothing to record, nothing that blocks: no transaction (blocker comes from found)
        return None
    async with svc.database.transaction() as conn:
        await steps.hold_lease(conn, step.id, step.lease or "")
        reason = await record_step_review(conn, run, step, found, blocker)
        if reason is None:
            return None
        await block_run(conn, run.id, reason)
        return await steps.get(conn, step.id)


async def push_branch(svc: Services, worktree: GitRepository, run: ProtocolRun) -> bool:
    """Push the protocol branch to `origin` when there is one (CI then tests this exact commit)."""
    if not run.branch_name or not await worktree.has_remote("origin"):
        return False
    with svc.tracing.span("git push", attributes={"tasksgodzilla.branch": run.branch_name}):
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
