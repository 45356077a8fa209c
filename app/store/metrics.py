"""What `/metrics` reports: aggregates over the whole service (every worker), read from the database.

Derived from the rows rather than counted in one process, so any API process answers for all of them
and a restart loses nothing. Each function returns `(labels, values)` rows; a histogram's values are
its count, its sum, then how many are at most each bound of `buckets` (cumulative, as Prometheus has them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Float, Text, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import agent_runs, events, projects, protocol_runs, step_runs, webhook_deliveries

Row = tuple[tuple[str, ...], tuple[float, ...]]


def _rows(result: Sequence[Any], labels: int) -> list[Row]:
    return [
        (tuple("" if v is None else str(v) for v in row[:labels]), tuple(float(v or 0) for v in row[labels:]))
        for row in result
    ]


async def protocol_runs_by_status(conn: AsyncConnection) -> list[Row]:
    query = (
        select(projects.c.name, protocol_runs.c.status, func.count())
        .join(projects, projects.c.id == protocol_runs.c.project_id)
        .group_by(projects.c.name, protocol_runs.c.status)
    )
    return _rows((await conn.execute(query)).all(), 2)


async def step_runs_by_status(conn: AsyncConnection) -> list[Row]:
    query = (
        select(projects.c.name, step_runs.c.status, step_runs.c.qa_verdict, func.count())
        .join(protocol_runs, protocol_runs.c.id == step_runs.c.protocol_run_id)
        .join(projects, projects.c.id == protocol_runs.c.project_id)
        .group_by(projects.c.name, step_runs.c.status, step_runs.c.qa_verdict)
    )
    return _rows((await conn.execute(query)).all(), 3)


async def agent_usage(conn: AsyncConnection) -> list[Row]:
    """Per project, stage, engine, model and outcome: runs, tokens by kind, cost, seconds."""
    a = agent_runs.c
    query = (
        select(
            projects.c.name,
            a.stage,
            a.engine,
            a.model,
            a.status,
            func.count(),
            func.sum(a.input_tokens),
            func.sum(a.cached_input_tokens),
            func.sum(a.output_tokens),
            func.sum(a.reasoning_tokens),
            func.sum(a.cost_usd),
            func.sum(a.duration_ms) / 1000.0,
        )
        .join(projects, projects.c.id == a.project_id)
        .group_by(projects.c.name, a.stage, a.engine, a.model, a.status)
    )
    return _rows((await conn.execute(query)).all(), 5)


async def webhook_outcomes(conn: AsyncConnection) -> list[Row]:
    d = webhook_deliveries.c
    query = select(d.provider, d.outcome, func.count()).group_by(d.provider, d.outcome)
    return _rows((await conn.execute(query)).all(), 2)


async def jobs_by_status(conn: AsyncConnection) -> list[Row]:
    """Procrastinate's jobs by task and status (its own table, in the same database)."""
    query = text(
        "SELECT task_name, status::text, count(*) FROM procrastinate_jobs GROUP BY task_name, status "
        "ORDER BY task_name, status"
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


def _buckets(value: ColumnElement[Any], buckets: Sequence[float]) -> list[ColumnElement[Any]]:
    return [func.count().filter(value <= bound) for bound in buckets]


async def agent_durations(conn: AsyncConnection, buckets: Sequence[float]) -> list[Row]:
    """Per stage, engine and model: a histogram of finished agent runs' wall time, in seconds."""
    a = agent_runs.c
    seconds = cast(a.duration_ms, Float) / 1000.0
    query = (
        select(a.stage, a.engine, a.model, func.count(), func.sum(seconds), *_buckets(seconds, buckets))
        .where(a.duration_ms.is_not(None))
        .group_by(a.stage, a.engine, a.model)
    )
    return _rows((await conn.execute(query)).all(), 3)


async def job_durations(conn: AsyncConnection, buckets: Sequence[float]) -> list[Row]:
    """Per task and outcome (succeeded, failed, deferred_for_retry, aborted): a histogram of each
    try's time from its start to its end, from the transitions Procrastinate stamps in its events
    table (written by every worker, in the statement that moves the job; a try whose worker died is
    ended by the stalled-job retry, as deferred_for_retry)."""
    tries = (
        text(
            "SELECT j.task_name, e.type::text AS outcome, lag(e.type) OVER w = 'started' AS ended, "
            "extract(epoch FROM e.at - lag(e.at) OVER w)::float8 AS seconds "
            "FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
            "WHERE e.type IN ('started', 'succeeded', 'failed', 'deferred_for_retry', 'aborted') "
            "WINDOW w AS (PARTITION BY e.job_id ORDER BY e.id)"
        )
        .columns(task_name=Text, outcome=Text, ended=Boolean, seconds=Float)
        .subquery("tries")
    )
    t = tries.c
    query = (
        select(t.task_name, t.outcome, func.count(), func.sum(t.seconds), *_buckets(t.seconds, buckets))
        .where(t.ended, t.outcome != "started")
        .group_by(t.task_name, t.outcome)
        .order_by(t.task_name, t.outcome)
    )
    return _rows((await conn.execute(query)).all(), 2)


async def qa_verdicts(conn: AsyncConnection) -> list[Row]:
    """Per project and verdict: every QA verdict given (a step judged again counts again)."""
    verdict = events.c.payload["verdict"].astext
    query = (
        select(projects.c.name, verdict, func.count())
        .join(projects, projects.c.id == events.c.project_id)
        .where(events.c.event_type == "qa.verdict")
        .group_by(projects.c.name, verdict)
    )
    return _rows((await conn.execute(query)).all(), 2)
