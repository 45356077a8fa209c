"""Operator controls: run the next or a given step, retry, run QA, pause, resume, cancel, open a PR now.

Each checks the operator rules (app/domain/actions.py) against what it read and refuses with their
reason; a job it needs is deferred in the same transaction as the change that needs it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.actions import RunAction, StepAction, run_action_refusal, step_action_refusal
from app.domain.records import ProtocolRun, StepRun
from app.domain.rework import NOTE_MAX
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.visible import check_visible_text
from app.domain.workflow import Work, execute_work, protocol_locks, publish_work, quality_work
from app.errors import ConflictError, InvalidInputError
from app.services.context import Services
from app.services.events import record
from app.services.progress import defer_next_work
from app.store import jobs, protocols, steps
from app.store.transitions import move_protocol, move_step

ACTIVE_STEP = (S.PENDING, S.RUNNING, S.NEEDS_QA)


async def _refuse_run_action(conn: AsyncConnection, run: ProtocolRun, action: RunAction) -> list[StepRun]:
    plan = await steps.list_for_protocol(conn, run.id)
    refusal = run_action_refusal(action, run.status, plan, has_branch=bool(run.branch_name))
    if refusal is not None:
        raise ConflictError(f"protocol run {run.name}: {refusal}", status=str(run.status), action=str(action))
    return plan


async def _refuse_step_action(conn: AsyncConnection, step: StepRun, action: StepAction) -> ProtocolRun:
    run = await protocols.get(conn, step.protocol_run_id)
    refusal = step_action_refusal(action, step, run.status, await steps.list_for_protocol(conn, run.id))
    if refusal is not None:
        raise ConflictError(refusal, status=str(step.status), action=str(action))
    return run


async def _defer_or_refuse(conn: AsyncConnection, work: Work, what: str, status: str) -> None:
    if not await jobs.defer(conn, work):
        raise ConflictError(f"{what} is queued already", status=status)


async def run_next_step(svc: Services, run_id: int) -> StepRun:
    """Queue the first step not completed, if it is pending; a second call while it waits is a conflict."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        plan = await _refuse_run_action(conn, run, RunAction.RUN_NEXT_STEP)
        step = min((s for s in plan if s.status is not S.COMPLETED), key=lambda s: s.step_index)
        await _defer_or_refuse(conn, execute_work(step), f"step {step.step_index}", str(step.status))
        await _requested(conn, run.project_id, step, "step.run_requested", "queued")
    return step


async def run_step(svc: Services, step_id: int) -> StepRun:
    """Queue one given pending step, when every step before it is completed."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        run = await _refuse_step_action(conn, step, StepAction.RUN)
        await _defer_or_refuse(conn, execute_work(step), f"step {step.step_index}", str(step.status))
        await _requested(conn, run.project_id, step, "step.run_requested", "queued")
    return step


async def run_qa(svc: Services, step_id: int) -> StepRun:
    """Queue QA of a step waiting for it."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        run = await _refuse_step_action(conn, step, StepAction.RUN_QA)
        await _defer_or_refuse(conn, quality_work(step), f"QA of step {step.step_index}", str(step.status))
        await _requested(conn, run.project_id, step, "qa.requested", "QA queued")
    return step


async def _requested(conn: AsyncConnection, project_id: int, step: StepRun, kind: str, what: str) -> None:
    await record(
        conn, project_id, kind, f"step {step.step_index}: {what}", step=step, step_index=step.step_index
    )


async def retry_step(
    svc: Services, step_id: int, *, expected_version: int | None = None, note: str = "", by: str = "operator"
) -> StepRun:
    """Send a failed or blocked step back to pending, unblock its run, and queue it.

    A step that QA or CI rejected (or any step given a `note`) is done again by its agent, on top of
    its last commit, with the verdict and the note in its prompt.
    """
    if len(note) > NOTE_MAX:
        raise InvalidInputError(f"the note is longer than {NOTE_MAX} characters", field="note")
    check_visible_text(note, field="note", multiline=True)
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        await _refuse_step_action(conn, step, StepAction.RETRY)
        limit = svc.settings.step_max_attempts
        if step.attempts >= limit:
            raise ConflictError(
                f"step {step.step_index} was tried {step.attempts} times "
                f"(TASKSGODZILLA_STEP_MAX_ATTEMPTS={limit}): approve it or raise the limit",
                status=str(step.status),
                attempts=step.attempts,
            )
        version = step.version if expected_version is None else expected_version
        changes = {"operator_note": note.strip() or None}
        step = await move_step(
            conn, step.id, S.PENDING, expected_version=version, reason="retry", changes=changes
        )
        run = await protocols.get(conn, step.protocol_run_id)
        await record(
            conn, run.project_id, "step.retried", f"step {step.step_index} retried by {by}", step=step,
            by=by, note=note.strip()[:NOTE_MAX],
        )  # fmt: skip
        if run.status is P.BLOCKED:
            await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version, reason="step retried")
        await defer_next_work(svc, conn, step.protocol_run_id)
    return step


async def pause(svc: Services, run_id: int, *, expected_version: int | None = None) -> ProtocolRun:
    """Stop after the current step: nothing new is queued while paused."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        version = run.version if expected_version is None else expected_version
        return await move_protocol(conn, run.id, P.PAUSED, expected_version=version, reason="paused")


async def resume(svc: Services, run_id: int, *, expected_version: int | None = None) -> ProtocolRun:
    """Carry on a paused (or blocked) run from where it stands; a failed or blocked step must be dealt
    with first (retry or approve it), or the run would be running with nothing it could do."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        await _refuse_run_action(conn, run, RunAction.RESUME)
        version = run.version if expected_version is None else expected_version
        run = await move_protocol(conn, run.id, P.RUNNING, expected_version=version, reason="resumed")
        await defer_next_work(svc, conn, run.id)
    return run


async def cancel(svc: Services, run_id: int, *, expected_version: int | None = None) -> ProtocolRun:
    """Cancel the run and its unfinished steps, and stop the agent that is working on it."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        version = run.version if expected_version is None else expected_version
        run = await move_protocol(conn, run.id, P.CANCELLED, expected_version=version, reason="cancelled")
        plan = await steps.list_for_protocol(conn, run.id)
        for step in plan:
            if step.status in (*ACTIVE_STEP, S.FAILED, S.BLOCKED):
                await move_step(
                    conn, step.id, S.CANCELLED, expected_version=step.version, reason="run cancelled"
                )
    await svc.queue.abort(protocol_locks(run.id, [step.id for step in plan]))
    return run


async def open_pr_now(svc: Services, run_id: int) -> ProtocolRun:
    """Queue publishing (push the branch, open its PR/MR) before the last step is done."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        await _refuse_run_action(conn, run, RunAction.OPEN_PR)
        await _defer_or_refuse(conn, publish_work(run.id), f"publishing of {run.name}", str(run.status))
        await record(conn, run.project_id, "pr.requested", f"publishing of {run.name} queued", run=run)
    return run
