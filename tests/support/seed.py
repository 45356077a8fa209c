"""Rows written straight through the store, for tests that need history without running agents."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import AgentRun, AgentRunStatus, ProtocolRun, Stage, StepRun
from app.store import agent_runs


async def agent_run(
    conn: AsyncConnection,
    run: ProtocolRun,
    step: StepRun,
    *,
    engine: str = "command",
    model: str | None = None,
    prompt_version: str | None = None,
    status: AgentRunStatus | None = None,
    **usage: Any,
) -> AgentRun:
    """An execution agent run of `step`; finished with `status` and `usage` when a status is given."""
    started = await agent_runs.start(
        conn,
        project_id=run.project_id,
        protocol_run_id=run.id,
        step_run_id=step.id,
        stage=Stage.EXECUTION,
        engine=engine,
        model=model,
        prompt_version=prompt_version,
    )
    if status is None:
        return started
    return await agent_runs.finish(conn, started.id, status=status, **usage)
