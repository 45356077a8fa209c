"""Operator controls: run the next or a given step, retry, run QA, pause, resume, cancel, open a PR now."""

from __future__ import annotations

from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.workflow import execute_work, protocol_locks, publish_work, quality_work
from app.errors import ConflictError
from app.services.context import Services
from app.services.progress import defer_next_work
from app.store import protocols, steps
from app.store.transitions import move_protocol, move_step

ACTIVE_STEP = (S.PENDING, S.RUNNING, S.NEEDS_QA)


async def run_next_step(svc: Services, run_id: int) -> StepRun:
    """Queue the first pending step; a second call while it waits is a ConflictError."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        plan = await steps.list_for_protocol(conn, run_id)
    pending = [s for s in plan if s.status is S.PENDING]
    if run.status is not P.RUNNING or not pending:
        raise ConflictError(
            f"protocol run {run.name} has no step to run now ({run.status})", status=str(run.status)
        )
    return await _queue_step(svc, pending[0])


async def run_step(svc: Services, step_id: int) -> StepRun:
    """Queue one given pending step."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        run = await protocols.get(conn, step.protocol_run_id)
    if run.status is not P.RUNNING or step.status is not S.PENDING:
        raise ConflictError(
            f"step {step.step_index} is {step.status} in a {run.status} run", status=str(step.status)
        )
    return await _queue_step(svc, step)


async def _queue_step(svc: Services, step: StepRun) -> StepRun:
    if not await svc.queue.defer(execute_work(step)):
        raise ConflictError(f"step {step.step_index} is queued already", status=str(step.status))
    return step


async def run_qa(svc: Services, step_id: int) -> StepRun:
    """Queue QA of a step waiting for it."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
    if step.status is not S.NEEDS_QA:
        raise ConflictError(
            f"step {step.step_index} is {step.status}, not waiting for QA", status=str(step.status)
        )
    if not await svc.queue.defer(quality_work(step)):
        raise ConflictError(f"QA of step {step.step_index} is queued already", status=str(step.status))
    return step


async def retry_step(svc: Services, step_id: int, *, expected_version: int | None = None) -> StepRun:
    """Send a failed or blocked step back to pending, unblock its run, and queue it."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        version = step.version if expected_version is None else expected_version
        step = await move_step(conn, step.id, S.PENDING, expected_version=version, reason="retry")
        run = await protocols.get(conn, step.protocol_run_id)
        if run.status is P.BLOCKED:
            await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version, reason="step retried")
    await defer_next_work(svc, step.protocol_run_id)
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
        stuck = [s for s in await steps.list_for_protocol(conn, run.id) if s.status in (S.FAILED, S.BLOCKED)]
        if stuck:
            raise ConflictError(
                f"step {stuck[0].step_index} is {stuck[0].status}: retry or approve it first",
                status=str(run.status),
                step_id=stuck[0].id,
            )
        version = run.version if expected_version is None else expected_version
        run = await move_protocol(conn, run.id, P.RUNNING, expected_version=version, reason="resumed")
    await defer_next_work(svc, run.id)
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
    if run.status not in (P.RUNNING, P.PAUSED, P.BLOCKED) or not run.branch_name:
        raise ConflictError(
            f"protocol run {run.name} has no branch to publish ({run.status})", status=str(run.status)
        )
    if not await svc.queue.defer(publish_work(run.id)):
        raise ConflictError(f"publishing of {run.name} is queued already", status=str(run.status))
    return run
