"""Periodic duties: queue work whose job went missing, block steps stuck past the limit, forget old records.

Each may run beside another pass of itself (an operator's command, a slow earlier tick) or beside
the jobs it watches: an item someone else moved meanwhile is skipped, and the pass goes on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.ci import awaits_merge
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.workflow import next_work, plan_work
from app.errors import IllegalTransitionError, StaleWriteError
from app.logs import get_logger
from app.services.context import Services
from app.services.events import record
from app.services.progress import block_run
from app.store import deliveries, idempotency, jobs, metric_counts, protocols, steps
from app.store import notifications as notification_store
from app.store.transitions import move_step

log = get_logger(__name__)

SCAN_LIMIT = 500


async def requeue_missing_work(svc: Services) -> int:
    """Defer what running and planning runs need when no job for it waits or runs; how many were
    queued. Every active run is looked at, a page of SCAN_LIMIT at a time: its runs, the one step of
    each that decides what comes next (one set query), and which of those jobs wait already."""
    queued, after_id = 0, 0
    while True:
        async with svc.database.transaction() as conn:
            active = await protocols.list_by_status(
                conn, [P.RUNNING, P.PLANNING], after_id=after_id, limit=SCAN_LIMIT
            )
            plans = await steps.next_of(conn, [r.id for r in active if r.status is P.RUNNING])
        if not active:
            return queued
        after_id = active[-1].id
        wanted = []
        for run in active:
            if run.status is P.PLANNING:
                wanted.append(plan_work(run.id))
            else:
                wanted += next_work(
                    run.status,
                    plans[run.id],
                    auto_qa=svc.settings.auto_qa_after_exec,
                    qa_on_ci=svc.settings.auto_qa_on_ci,
                    awaiting_merge=awaits_merge(run),
                )
        if wanted:
            busy = await svc.queue.pending_locks([w.queueing_lock for w in wanted])
            async with svc.database.transaction() as conn:
                for work in wanted:
                    if work.queueing_lock not in busy:
                        queued += await jobs.defer(conn, work)
        if len(active) < SCAN_LIMIT:
            return queued


async def fail_stuck_steps(svc: Services, *, now: datetime | None = None) -> int:
    """Block steps `running` longer than the stuck limit whose job is gone; how many were blocked.
    Every such step is looked at, a page of SCAN_LIMIT at a time."""
    limit = timedelta(seconds=svc.settings.stuck_step_seconds)
    cutoff = (now or datetime.now(UTC)) - limit
    blocked, after_id = 0, 0
    while True:
        async with svc.database.transaction() as conn:
            stuck = await steps.running_since_before(conn, cutoff, after_id=after_id, limit=SCAN_LIMIT)
        if not stuck:
            return blocked
        after_id = stuck[-1].id
        busy = await svc.queue.pending_locks([f"execute:{s.id}" for s in stuck])
        for step in stuck:
            if f"execute:{step.id}" in busy:
                continue  # a live job still holds it
            try:
                blocked += await _block_stuck_step(svc, step.id)
            except (StaleWriteError, IllegalTransitionError) as lost:
                log.info("a stuck step moved meanwhile; skipped", step_id=step.id, error=lost.message)
        if len(stuck) < SCAN_LIMIT:
            return blocked


async def _block_stuck_step(svc: Services, step_id: int) -> int:
    async with svc.database.transaction() as conn:
        current = await steps.get(conn, step_id)
        if current.status is not S.RUNNING:
            return 0
        reason = f"running for more than {svc.settings.stuck_step_seconds} s"
        run = await protocols.get(conn, current.protocol_run_id)
        await record(
            conn,
            run.project_id,
            "watchdog.stuck",
            reason,
            step=current,
            seconds=svc.settings.stuck_step_seconds,
        )
        await move_step(conn, current.id, S.BLOCKED, expected_version=current.version, reason=reason)
        await block_run(conn, run.id, reason)
    return 1


IDEMPOTENCY_KEEP = timedelta(hours=24)
DELIVERIES_KEEP = timedelta(days=30)  # forges redeliver for days; a month keeps them for audits too


async def forget_old_idempotency_keys(svc: Services, *, now: datetime | None = None) -> int:
    """Idempotency keys are kept a day: long enough for any client's retries."""
    async with svc.database.transaction() as conn:
        return await idempotency.forget_before(conn, (now or datetime.now(UTC)) - IDEMPOTENCY_KEEP)


async def forget_old_deliveries(svc: Services, *, now: datetime | None = None) -> int:
    """Webhook deliveries are kept a month, then their dedupe records go."""
    async with svc.database.transaction() as conn:
        return await deliveries.forget_before(conn, (now or datetime.now(UTC)) - DELIVERIES_KEEP)


async def forget_old_notifications(svc: Services, *, now: datetime | None = None) -> int:
    """Notification deliveries sent or failed are kept a month, like webhook deliveries: the cursor
    has long passed their events, so no routing pass can add them again."""
    async with svc.database.transaction() as conn:
        return await notification_store.forget_finished_before(
            conn, (now or datetime.now(UTC)) - DELIVERIES_KEEP
        )


async def fold_metric_counts(svc: Services) -> int:
    """Fold the counts' deltas into their totals, so what a scrape or the projects page reads stays a
    few hundred rows even when nothing scrapes (app/store/metric_counts.py)."""
    async with svc.database.transaction() as conn:
        return int(await metric_counts.fold(conn, metric_counts.JOB_BUCKETS))
