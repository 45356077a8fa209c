"""Jobs deferred inside the caller's transaction: a state change and the job it needs commit together.

Procrastinate defers with SQL (an INSERT into `procrastinate_jobs`, whose trigger NOTIFYs the
workers), so the insert can run on whichever connection holds the state write. The job then exists
exactly when the change does: a crash between the two cannot lose it, and a rolled-back change
queues nothing. Workers see it (and hear the NOTIFY) when the transaction commits.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.workflow import Work
from app.store.metrics import jobs_waiting

QUEUE = "default"
HOST_QUEUE_PREFIX = "host:"

# One statement, no savepoint: a job with the same queueing lock already waiting (`todo`) is the
# same work, so the insert does nothing. The conflict target names Procrastinate's partial unique
# index (`procrastinate_jobs_queueing_lock_idx_v1`) by its columns and predicate. The queue is the
# project's host's (`host:<name>`) when the project lives on one machine (registered by local path),
# found from whichever id the job carries; else the shared one.
_DEFER = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "VALUES (coalesce((SELECT :prefix || p.host FROM projects p WHERE p.host IS NOT NULL AND p.id = "
    "coalesce(CAST(:project_id AS bigint), (SELECT r.project_id FROM protocol_runs r WHERE r.id = "
    "coalesce(CAST(:run_id AS bigint), (SELECT s.protocol_run_id FROM step_runs s "
    "WHERE s.id = CAST(:step_id AS bigint)))))), :queue), "
    ":task, 0, :lock, :queueing_lock, CAST(:args AS jsonb)) "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING RETURNING id"
)


def host_queue(host: str) -> str:
    """The queue of the jobs of projects that live on `host` (only that machine's workers take them)."""
    return HOST_QUEUE_PREFIX + host


async def defer(conn: AsyncConnection, work: Work) -> bool:
    """Queue `work` in the caller's transaction; False when the same work is already waiting."""
    args = work.kwargs
    job_id = await conn.scalar(
        _DEFER,
        {
            "queue": QUEUE,
            "prefix": HOST_QUEUE_PREFIX,
            "project_id": args.get("project_id"),
            "run_id": args.get("protocol_run_id"),
            "step_id": args.get("step_run_id"),
            "task": work.job.value,
            "lock": work.lock,
            "queueing_lock": work.queueing_lock,
            "args": json.dumps(args),
        },
    )
    return job_id is not None


async def waiting_on_host(conn: AsyncConnection, host: str) -> tuple[int, float]:
    """Jobs due on `host`'s queue and not taken, and how long the oldest has waited (seconds)."""
    ((_, (count, seconds)),) = await jobs_waiting(conn, [host_queue(host)])
    return int(count), seconds
