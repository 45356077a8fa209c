"""Agent runs: one row per agent invocation, opened when it starts and closed with its usage."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import AgentRun, AgentRunStatus, Stage
from app.errors import ConflictError
from app.store.rows import fetch_all, fetch_one, to_record
from app.store.tables import agent_runs


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
) -> AgentRun:
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


async def list_for_step(conn: AsyncConnection, step_run_id: int) -> list[AgentRun]:
    query = select(agent_runs).where(agent_runs.c.step_run_id == step_run_id).order_by(agent_runs.c.id)
    return await fetch_all(conn, query, AgentRun)
