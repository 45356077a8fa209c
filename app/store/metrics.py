"""What `/metrics` reports: figures over the whole service (every worker), read from the database.

Kept in the database rather than counted in one process, so any API process answers for all of them
and a restart loses nothing; counts are kept as the rows change (app/store/metric_counts.py), so a
scrape reads a few hundred rows whatever the size of the tables. Each function returns `(labels,
values)` rows; a histogram's values are its count, its sum, then how many are at most each bound
(cumulative, as Prometheus has them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store import metric_counts
from app.store.tables import projects

Row = tuple[tuple[str, ...], tuple[float, ...]]


def _rows(result: Sequence[Any], labels: int) -> list[Row]:
    return [
        (tuple("" if v is None else str(v) for v in row[:labels]), tuple(float(v or 0) for v in row[labels:]))
        for row in result
    ]


async def counts(conn: AsyncConnection, job_bounds: Sequence[float]) -> metric_counts.Counted:
    """The kept counts (app/store/metric_counts.py), each project's id replaced by its name (the
    counts of a project gone meanwhile are left out)."""
    counted = await metric_counts.read(conn, job_bounds)
    names = {str(i): name for i, name in (await conn.execute(select(projects.c.id, projects.c.name))).all()}
    for family in metric_counts.PER_PROJECT:
        counted[family] = [
            ((names[labels[0]], *labels[1:]), values)
            for labels, values in counted.get(family, [])
            if labels[0] in names
        ]
    return counted


async def jobs_by_status(conn: AsyncConnection) -> list[Row]:
    """Procrastinate's live jobs (waiting or running) by task and status (its own table, in the same
    database; a partial index of it holds just those). Finished tries are the job-duration histogram's."""
    query = text(
        "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
        "WHERE status IN ('todo', 'doing') GROUP BY task_name, status ORDER BY task_name, status"
    )
    return _rows((await conn.execute(query)).all(), 2)


async def jobs_waiting(conn: AsyncConnection, queues: Sequence[str]) -> list[Row]:
    """Per queue (each of `queues` listed, zero when empty): jobs due and not yet taken, and how
    long the oldest of them has waited, in seconds (since it was due, or deferred when unscheduled)."""
    query = text(
        "SELECT q.name, count(j.id), "
        "coalesce(max(extract(epoch FROM now() - coalesce(j.scheduled_at, d.at))), 0) "
        "FROM unnest(CAST(:queues AS text[])) AS q(name) "
        "LEFT JOIN procrastinate_jobs j ON j.queue_name = q.name AND j.status = 'todo' "
        "AND (j.scheduled_at IS NULL OR j.scheduled_at <= now()) "
        "LEFT JOIN LATERAL (SELECT min(e.at) AS at FROM procrastinate_events e "
        "WHERE e.job_id = j.id AND e.type = 'deferred') d ON true "
        "GROUP BY q.name ORDER BY q.name"
    )
    return _rows((await conn.execute(query, {"queues": list(queues)})).all(), 1)


async def hosts(conn: AsyncConnection) -> list[str]:
    """The machines some project lives on (registered by local path there)."""
    query = select(projects.c.host).where(projects.c.host.is_not(None)).distinct().order_by(projects.c.host)
    return list((await conn.execute(query)).scalars())
