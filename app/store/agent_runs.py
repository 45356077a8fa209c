"""Agent runs: one row per agent invocation, opened when it starts and closed with its usage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import case, column, exists, func, insert, literal_column, select, table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.budgets import Spend
from app.domain.records import AgentRun, AgentRunStatus, Stage
from app.errors import ConflictError
from app.store.rows import fetch_all, fetch_one, to_record
from app.store.tables import agent_logs, agent_runs

# Procrastinate's own tables, read (never written) to tell whether the worker running an agent lives.
_jobs = table("procrastinate_jobs", column("id"), column("status"), column("worker_id"), column("attempts"))
_workers = table("procrastinate_workers", column("id"), column("last_heartbeat"))


class RunningJob(NamedTuple):
    """The Procrastinate job (and which try of it) and the worker an agent runs under."""

    job_id: int
    attempt: int
    worker_id: int | None


async def start(
    conn: AsyncConnection,
    *,
    project_id: int,
    stage: Stage,
    engine: str,
    model: str | None,
    prompt_version: str | None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    job: RunningJob | None = None,
) -> AgentRun:
    """Open a running agent run; `job` is who runs it (None outside the job queue, e.g. the CLI)."""
    statement = (
        insert(agent_runs)
        .values(
            project_id=project_id,
            protocol_run_id=protocol_run_id,
            step_run_id=step_run_id,
            stage=str(stage),
            engine=engine,
            model=model,
            prompt_version=prompt_version,
            job_id=job.job_id if job else None,
            job_attempt=job.attempt if job else None,
            worker_id=job.worker_id if job else None,
        )
        .returning(agent_runs)
    )
    return to_record(AgentRun, (await conn.execute(statement)).one())


async def finish(
    conn: AsyncConnection,
    run_id: int,
    *,
    status: AgentRunStatus,
    input_tokens: int = 0,
    cached_input_tokens: int = 0,
    output_tokens: int = 0,
    reasoning_tokens: int = 0,
    cost_usd: Decimal | None = None,
    exit_code: int | None = None,
    duration_ms: int | None = None,
    log_path: str | None = None,
    error: str | None = None,
) -> AgentRun:
    """Close a running agent run with its outcome and usage; closing it twice is a ConflictError."""
    if status is AgentRunStatus.RUNNING:
        raise ValueError("an agent run is finished with a final status")
    statement = (
        update(agent_runs)
        .where(agent_runs.c.id == run_id, agent_runs.c.status == AgentRunStatus.RUNNING.value)
        .values(
            status=str(status),
            input_tokens=input_tokens,
            cached_input_tokens=cached_input_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            cost_usd=cost_usd,
            exit_code=exit_code,
            duration_ms=duration_ms,
            log_path=log_path,
            error=error,
            finished_at=func.now(),
        )
        .returning(agent_runs)
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        current = await get(conn, run_id)
        raise ConflictError(f"agent run {run_id} is {current.status} already", current=str(current.status))
    return to_record(AgentRun, row)


async def get(conn: AsyncConnection, run_id: int) -> AgentRun:
    return await fetch_one(
        conn, select(agent_runs).where(agent_runs.c.id == run_id), AgentRun, what=f"agent run {run_id}"
    )


async def list_for_project(conn: AsyncConnection, project_id: int) -> list[AgentRun]:
    query = select(agent_runs).where(agent_runs.c.project_id == project_id).order_by(agent_runs.c.id)
    return await fetch_all(conn, query, AgentRun)


async def list_for_step(conn: AsyncConnection, step_run_id: int) -> list[AgentRun]:
    query = select(agent_runs).where(agent_runs.c.step_run_id == step_run_id).order_by(agent_runs.c.id)
    return await fetch_all(conn, query, AgentRun)


async def store_log(conn: AsyncConnection, run_id: int, content: str, *, truncated: bool) -> None:
    """Keep a run's (already redacted) transcript; a second call replaces it."""
    statement = pg_insert(agent_logs).values(agent_run_id=run_id, content=content, truncated=truncated)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[agent_logs.c.agent_run_id],
            set_={"content": statement.excluded.content, "truncated": statement.excluded.truncated},
        )
    )


async def read_log(conn: AsyncConnection, run_id: int) -> str:
    content = await conn.scalar(select(agent_logs.c.content).where(agent_logs.c.agent_run_id == run_id))
    if content is None:
        await get(conn, run_id)  # NotFoundError when the run itself is unknown
        return ""
    return str(content)


async def tokens_used(
    conn: AsyncConnection, *, protocol_run_id: int | None = None, step_run_id: int | None = None
) -> int:
    """Input plus output tokens of every agent run of a protocol run or a step."""
    query = select(func.coalesce(func.sum(agent_runs.c.input_tokens + agent_runs.c.output_tokens), 0))
    if protocol_run_id is not None:
        query = query.where(agent_runs.c.protocol_run_id == protocol_run_id)
    if step_run_id is not None:
        query = query.where(agent_runs.c.step_run_id == step_run_id)
    return int(await conn.scalar(query) or 0)


def _spend_columns() -> tuple[Any, ...]:
    tokens = agent_runs.c.input_tokens + agent_runs.c.output_tokens
    unpriced = case((agent_runs.c.cost_usd.is_(None), tokens), else_=0)
    return tokens, agent_runs.c.cost_usd, unpriced


async def spend(
    conn: AsyncConnection,
    project_id: int,
    *,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    since: datetime | None = None,
) -> Spend:
    """Tokens and known dollars of a project's agent runs (of one run, one step, or started `since`),
    the tokens of those whose cost is unknown (a model without a price), and how many still run."""
    tokens, cost, unpriced = _spend_columns()
    query = select(
        func.coalesce(func.sum(tokens), 0),
        func.coalesce(func.sum(cost), 0),
        func.coalesce(func.sum(unpriced), 0),
        func.count().filter(agent_runs.c.status == AgentRunStatus.RUNNING.value),
    ).where(agent_runs.c.project_id == project_id)
    if protocol_run_id is not None:
        query = query.where(agent_runs.c.protocol_run_id == protocol_run_id)
    if step_run_id is not None:
        query = query.where(agent_runs.c.step_run_id == step_run_id)
    if since is not None:
        query = query.where(agent_runs.c.started_at >= since)
    row = (await conn.execute(query)).one()
    return Spend(
        tokens=int(row[0]), cost_usd=Decimal(row[1]), unpriced_tokens=int(row[2]), running=int(row[3])
    )


async def lock_budget(conn: AsyncConnection, project_id: int) -> None:
    """Hold the project's budget lock until this transaction ends: one budget check (and the start
    of the run it lets through) at a time per project, on every machine."""
    key = func.hashtextextended(f"budget:{project_id}", 0)
    await conn.execute(select(func.pg_advisory_xact_lock(key)))


async def recent_spends(conn: AsyncConnection, project_id: int, stage: Stage, *, limit: int) -> list[Spend]:
    """What each of the project's last `limit` finished agent runs of `stage` spent, newest first."""
    tokens, cost, unpriced = _spend_columns()
    query = (
        select(tokens, func.coalesce(cost, 0), unpriced)
        .where(
            agent_runs.c.project_id == project_id,
            agent_runs.c.stage == str(stage),
            agent_runs.c.status != AgentRunStatus.RUNNING.value,
        )
        .order_by(agent_runs.c.id.desc())
        .limit(limit)
    )
    return [
        Spend(tokens=int(row[0]), cost_usd=Decimal(row[1]), unpriced_tokens=int(row[2]))
        for row in await conn.execute(query)
    ]


async def close_superseded(
    conn: AsyncConnection,
    *,
    project_id: int,
    protocol_run_id: int | None,
    step_run_id: int | None,
    stage: Stage,
    stale_after_seconds: float,
) -> int:
    """A new run of this subject and stage starts: close the earlier ones still marked running whose
    process is gone (their job or worker is), or cannot be known to live (run outside a job)."""
    where = (
        agent_runs.c.project_id == project_id,
        agent_runs.c.protocol_run_id.is_not_distinct_from(protocol_run_id),
        agent_runs.c.step_run_id.is_not_distinct_from(step_run_id),
        agent_runs.c.stage == str(stage),
    )
    return await _close_dead(conn, where, stale_after_seconds, close_unowned=True)


async def close_abandoned(conn: AsyncConnection, *, stale_after_seconds: float) -> int:
    """Close every run marked running whose worker stopped heartbeating or whose job moved on.

    Runs started outside a job are left alone: nothing here can tell whether their process lives.
    """
    return await _close_dead(conn, (), stale_after_seconds, close_unowned=False)


async def _close_dead(
    conn: AsyncConnection, where: tuple, stale_after_seconds: float, *, close_unowned: bool
) -> int:
    worker_alive = exists().where(
        _workers.c.id == agent_runs.c.worker_id,
        _workers.c.last_heartbeat > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds),
    )
    job_here = exists().where(
        _jobs.c.id == agent_runs.c.job_id,
        _jobs.c.status == literal_column("'doing'"),  # an enum of Procrastinate's: no bound text
        _jobs.c.worker_id == agent_runs.c.worker_id,
        _jobs.c.attempts == agent_runs.c.job_attempt,
    )
    query = (
        select(
            agent_runs.c.id,
            agent_runs.c.stage,
            agent_runs.c.job_id,
            agent_runs.c.job_attempt,
            agent_runs.c.worker_id,
            worker_alive.label("worker_alive"),
            job_here.label("job_here"),
        )
        .where(*where, agent_runs.c.status == AgentRunStatus.RUNNING.value)
        .with_for_update(of=agent_runs, skip_locked=True)
    )
    closed = 0
    for row in (await conn.execute(query)).all():
        if row.job_id is None:
            if not close_unowned:
                continue
            reason = (
                f"closed when a new {row.stage} run started: this one ran outside the job queue (from"
                " the command line, say), so whether its process still runs cannot be known"
            )
        elif not row.worker_alive:
            reason = (
                f"abandoned: worker {row.worker_id} running job {row.job_id} stopped"
                f" (no heartbeat for {stale_after_seconds:g} s)"
            )
        elif not row.job_here:
            reason = (
                f"abandoned: try {row.job_attempt + 1} of job {row.job_id} ended on worker"
                f" {row.worker_id} without closing this run"
            )
        else:
            continue  # its worker is alive and still running its job: it is really running
        closed += await _close(conn, row.id, reason)
    return closed


async def _close(conn: AsyncConnection, run_id: int, reason: str) -> int:
    statement = (
        update(agent_runs)
        .where(agent_runs.c.id == run_id, agent_runs.c.status == AgentRunStatus.RUNNING.value)
        .values(status=AgentRunStatus.FAILED.value, error=reason, finished_at=func.now())
    )
    return (await conn.execute(statement)).rowcount or 0


async def project_of(conn: AsyncConnection, run_id: int) -> int | None:
    return await conn.scalar(select(agent_runs.c.project_id).where(agent_runs.c.id == run_id))
