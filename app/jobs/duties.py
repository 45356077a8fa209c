"""The periodic duties as Procrastinate periodic tasks: one job per duty and tick, whatever the workers.

Every worker defers each duty's ticks; the database keeps one job per duty and tick (Procrastinate's
`procrastinate_periodic_defers`), and a queueing lock keeps at most one waiting per duty. A worker
whose deferrer lags behind may defer a tick again once its record is gone: that job finds the tick
(or a newer one) run already and does nothing. Each duty is
its own job, so one failing never skips another. They run on a worker of their own (the `duties`
queue), so they never wait for a slot behind long agent jobs.

No serialising `lock`: a duty job left `doing` by a dead worker would hold it until the stalled-jobs
duty freed it, and that duty must never wait on itself. Instead every step of a duty tolerates a
concurrent pass doing the same (an operator's command, a slow earlier tick): what is already done
is skipped, and the pass goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate import JobContext

from app.domain.cron import interval_cron
from app.jobs.tasks import services_of
from app.logs import correlation_scope, get_logger
from app.services import intake, intake_progress, notify_delivery, scheduler, schedules
from app.services.agents import close_abandoned_runs
from app.services.context import Services

log = get_logger(__name__)

DUTY_QUEUE = "duties"
SCHEDULES_CRON = "* * * * *"  # every minute: the finest a schedule's cron line can say
RETENTION_CRON = "17 * * * *"  # hourly: what it removes is kept for a day or more
FINISHED_DUTIES_KEEP_HOURS = 1
FAILED_DUTIES_KEEP_HOURS = 7 * 24  # a failed pass stays in Procrastinate's table a week, to look at
# Work jobs: the runs, steps and events keep the history; the queue keeps a finished job a week and
# a failed or aborted one a month, so the jobs table stays the size of recent work (GET /queue and
# /metrics count only the live ones; finished tries are /metrics' job-duration histogram).
FINISHED_JOBS_KEEP_HOURS = 7 * 24
FAILED_JOBS_KEEP_HOURS = 30 * 24


# A job `doing` whose worker has been silent too long (or was pruned) goes back to the queue. One
# statement checks and moves each job under its row lock: a job another pass is retrying right now
# is skipped (SKIP LOCKED), and one already retried and picked up by a live worker no longer matches.
# A stalled job whose work waits already (a job with its queueing lock is `todo`: a duty's next tick,
# work deferred again) is failed instead: retrying it would break the queueing lock's unique index,
# and with it the whole pass, at every tick.
RETRY_STALLED_JOBS = """
WITH stalled AS MATERIALIZED (
    SELECT job.id, job.task_name, job.queueing_lock
      FROM procrastinate_jobs job
      LEFT JOIN procrastinate_workers worker ON worker.id = job.worker_id
     WHERE job.status = 'doing'
       AND (job.worker_id IS NULL
            OR worker.last_heartbeat < now() - make_interval(secs => %(seconds)s::double precision))
     ORDER BY job.id
       FOR UPDATE OF job SKIP LOCKED
), judged AS MATERIALIZED (
    SELECT id, task_name,
           queueing_lock IS NOT NULL
           AND (row_number() OVER (PARTITION BY queueing_lock ORDER BY id) > 1
                OR EXISTS (SELECT 1 FROM procrastinate_jobs waiting
                            WHERE waiting.queueing_lock = stalled.queueing_lock
                              AND waiting.status = 'todo')) AS superseded
      FROM stalled
)
SELECT id, task_name, superseded,
       CASE WHEN superseded THEN procrastinate_finish_job_v1(id, 'failed', false)
            ELSE procrastinate_retry_job_v2(id, now(), NULL, NULL, NULL) END AS done
  FROM judged
"""


async def retry_stalled_jobs(app: procrastinate.App, silent_seconds: float) -> int:
    """Jobs left `doing` by a worker that stopped heartbeating go back to the queue (or fail, when
    their work waits already); how many."""
    rows: list[dict[str, Any]] = await app.connector.execute_query_all_async(
        RETRY_STALLED_JOBS, seconds=silent_seconds
    )
    for row in rows:
        if row["superseded"]:
            log.warning(
                "failed a job whose worker went silent: the same work waits already",
                job_id=row["id"],
                task=row["task_name"],
            )
        else:
            log.warning("retried a job whose worker went silent", job_id=row["id"], task=row["task_name"])
    await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=silent_seconds)
    return len(rows)


async def forget_finished_duties(app: procrastinate.App) -> int:
    """Each tick leaves a job behind: finished ones go after an hour, failed ones after a week."""
    manager = app.job_manager
    await manager.delete_old_jobs(nb_hours=FINISHED_DUTIES_KEEP_HOURS, queue=DUTY_QUEUE)
    await manager.delete_old_jobs(
        nb_hours=FAILED_DUTIES_KEEP_HOURS, queue=DUTY_QUEUE, include_failed=True, include_aborted=True
    )
    return 0  # Procrastinate does not say how many


async def forget_finished_jobs(app: procrastinate.App) -> int:
    """Finished jobs of every queue go after a week, failed and aborted ones after a month."""
    manager = app.job_manager
    await manager.delete_old_jobs(nb_hours=FINISHED_JOBS_KEEP_HOURS)
    await manager.delete_old_jobs(nb_hours=FAILED_JOBS_KEEP_HOURS, include_failed=True, include_aborted=True)
    return 0  # Procrastinate does not say how many


DutyCall = Callable[[procrastinate.App, Services], Awaitable[int]]


@dataclass(frozen=True)
class Duty:
    name: str
    cron: str
    call: DutyCall


def duties(scan_seconds: int, intake_poll_seconds: int = 300) -> list[Duty]:
    """Every duty and when it runs; each returns how much it did."""
    every = interval_cron(scan_seconds)
    return [
        # Triggers and issue intake (app/services/schedules.py, intake.py, intake_progress.py).
        Duty("fire_schedules", SCHEDULES_CRON, lambda _, s: schedules.fire_due(s)),
        Duty("poll_issues", interval_cron(intake_poll_seconds), lambda _, s: intake.poll_issues(s)),
        Duty("comment_issue_progress", every, lambda _, s: intake_progress.post_progress(s)),
        Duty(
            "retry_stalled_jobs", every, lambda a, s: retry_stalled_jobs(a, s.settings.stalled_after_seconds)
        ),
        Duty("requeue_missing_work", every, lambda _, s: scheduler.requeue_missing_work(s)),
        Duty("fail_stuck_steps", every, lambda _, s: scheduler.fail_stuck_steps(s)),
        Duty("close_abandoned_agent_runs", every, lambda _, s: close_abandoned_runs(s)),
        Duty("route_notifications", every, lambda _, s: notify_delivery.route_new_events(s)),
        Duty("fold_metric_counts", every, lambda _, s: scheduler.fold_metric_counts(s)),
        Duty(
            "forget_idempotency_keys", RETENTION_CRON, lambda _, s: scheduler.forget_old_idempotency_keys(s)
        ),
        Duty("forget_deliveries", RETENTION_CRON, lambda _, s: scheduler.forget_old_deliveries(s)),
        Duty("forget_notifications", RETENTION_CRON, lambda _, s: scheduler.forget_old_notifications(s)),
        Duty("forget_finished_duties", RETENTION_CRON, lambda a, _: forget_finished_duties(a)),
        Duty("forget_finished_jobs", RETENTION_CRON, lambda a, _: forget_finished_jobs(a)),
    ]


def duty_task_name(duty: Duty) -> str:
    return f"duty_{duty.name}"


def register_duties(app: procrastinate.App, scan_seconds: int, intake_poll_seconds: int = 300) -> int:
    """Attach every duty to `app` as a periodic task; how many (the duties worker's concurrency)."""
    found = duties(scan_seconds, intake_poll_seconds)
    for duty in found:
        name = duty_task_name(duty)
        task = app.task(name=name, queue=DUTY_QUEUE, queueing_lock=name, pass_context=True)(_run(duty))
        app.periodic(cron=duty.cron, periodic_id=duty.name)(task)
    return len(found)


# A tick that this duty ran already, or that a newer tick overtook: Procrastinate forgets a tick's
# defer record once a newer tick is deferred, so a worker whose deferrer lags behind can defer it again.
STALE_TICK = """
SELECT EXISTS (
    SELECT 1 FROM procrastinate_jobs
     WHERE queue_name = %(queue)s AND task_name = %(task)s AND id <> %(id)s
       AND status IN ('doing', 'succeeded') AND (args->>'timestamp')::bigint >= %(timestamp)s
) AS stale
"""


def _run(duty: Duty) -> Callable[..., Awaitable[None]]:
    async def run(context: JobContext, timestamp: int) -> None:
        with correlation_scope(f"duty-{duty.name}-{timestamp}", duty=duty.name):
            job = context.job
            [row] = await context.app.connector.execute_query_all_async(
                STALE_TICK, queue=DUTY_QUEUE, task=job.task_name, id=job.id, timestamp=timestamp
            )
            if row["stale"]:
                log.info("skipped a stale duty tick", duty=duty.name, tick=timestamp)
                return
            try:
                done = await duty.call(context.app, services_of(context))
            except Exception:
                log.exception("periodic duty failed; its next tick tries again", duty=duty.name)
                raise
        if done:
            log.info("periodic duty", duty=duty.name, done=done)

    return run
