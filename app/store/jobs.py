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

QUEUE = "default"

# One statement, no savepoint: a job with the same queueing lock already waiting (`todo`) is the
# same work, so the insert does nothing. The conflict target names Procrastinate's partial unique
# index (`procrastinate_jobs_queueing_lock_idx_v1`) by its columns and predicate.
_DEFER = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "VALUES (:queue, :task, 0, :lock, :queueing_lock, CAST(:args AS jsonb)) "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING RETURNING id"
)


async def defer(conn: AsyncConnection, work: Work) -> bool:
    """Queue `work` in the caller's transaction; False when the same work is already waiting."""
    job_id = await conn.scalar(
        _DEFER,
        {
            "queue": QUEUE,
            "task": work.job.value,
            "lock": work.lock,
            "queueing_lock": work.queueing_lock,
            "args": json.dumps(work.kwargs),
        },
    )
    return job_id is not None
