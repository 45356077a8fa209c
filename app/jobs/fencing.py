"""A job's outcome is written only by the try that still holds it.

A worker frozen past the stall window (SIGSTOP, a VM paused, a long GC) has its job retried: another
worker takes it, as try N+1 of the same job row. When the frozen one wakes, its late outcome must
change nothing. Procrastinate finishes and retries jobs by id alone, so the late try would mark the
other worker's job succeeded or failed under it; here both are conditional on the row still being
`doing` at the try's own attempt count, checked under the row's lock. The job wrapper asks `holds`
before it records anything about a failure (app/jobs/tasks.py).
"""

from __future__ import annotations

import datetime
from typing import Any

from procrastinate import jobs, manager

from app.logs import get_logger

log = get_logger(__name__)

# Each statement first locks the row if this try still holds it (`held`), then acts on what it locked.
FINISH = """
WITH held AS MATERIALIZED (
    SELECT id FROM procrastinate_jobs
     WHERE id = %(job_id)s AND status = 'doing' AND attempts = %(attempts)s FOR UPDATE)
SELECT procrastinate_finish_job_v1(id, %(status)s, %(delete_job)s) FROM held
"""
RETRY = """
WITH held AS MATERIALIZED (
    SELECT id FROM procrastinate_jobs
     WHERE id = %(job_id)s AND status = 'doing' AND attempts = %(attempts)s FOR UPDATE)
SELECT procrastinate_retry_job_v2(id, %(retry_at)s, %(new_priority)s, %(new_queue_name)s, %(new_lock)s)
  FROM held
"""
HOLDS = """
SELECT id FROM procrastinate_jobs WHERE id = %(job_id)s AND status = 'doing' AND attempts = %(attempts)s
"""


class FencedJobManager(manager.JobManager):
    """Procrastinate's job manager, finishing and retrying a job only for the try that holds it."""

    async def finish_job(self, job: jobs.Job, status: jobs.Status, delete_job: bool) -> None:
        rows = await self.connector.execute_query_all_async(
            FINISH, job_id=job.id, attempts=job.attempts, status=status.value, delete_job=delete_job
        )
        _report_stale(rows, job, f"finished as {status.value}")

    async def retry_job(
        self,
        job: jobs.Job,
        retry_at: datetime.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        rows = await self.connector.execute_query_all_async(
            RETRY,
            job_id=job.id,
            attempts=job.attempts,
            retry_at=retry_at or datetime.datetime.now(datetime.UTC),
            new_priority=priority,
            new_queue_name=queue,
            new_lock=lock,
        )
        _report_stale(rows, job, "retried")


async def holds(manager_: manager.JobManager, job: jobs.Job) -> bool:
    """Whether this try of `job` still holds it (no other worker took it over)."""
    rows = await manager_.connector.execute_query_all_async(HOLDS, job_id=job.id, attempts=job.attempts)
    return bool(rows)


def _report_stale(rows: list[dict[str, Any]], job: jobs.Job, what: str) -> None:
    if not rows:
        log.warning(
            "a job taken over by another worker was not " + what + " by its late try",
            job_id=job.id,
            attempt=job.attempts,
            task=job.task_name,
        )
