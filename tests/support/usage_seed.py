"""Agent runs of every stage over several days, priced and unpriced, and QA verdicts: the history the
usage totals and charts read, written straight through the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from app.domain.records import AgentRunStatus, ProtocolRun, Stage, StepRun
from app.services.events import record
from app.store import agent_runs
from app.store.database import Database
from app.store.tables import agent_runs as agent_runs_table

DAY_1 = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)  # late in the day: a UTC day, not the server's


async def _agent_run(
    database: Database,
    run: ProtocolRun,
    step: StepRun | None,
    stage: Stage,
    started: datetime,
    *,
    model: str | None,
    cost: str | None,
    tokens: tuple[int, int, int, int],
    duration_ms: int,
    status: AgentRunStatus = AgentRunStatus.SUCCEEDED,
) -> None:
    async with database.transaction() as conn:
        opened = await agent_runs.start(
            conn,
            project_id=run.project_id,
            protocol_run_id=run.id,
            step_run_id=step.id if step else None,
            stage=stage,
            engine="codex" if model else "command",
            model=model,
            prompt_version=None,
        )
        if status is not AgentRunStatus.RUNNING:
            inp, cached, out, reasoning = tokens
            await agent_runs.finish(
                conn,
                opened.id,
                status=status,
                input_tokens=inp,
                cached_input_tokens=cached,
                output_tokens=out,
                reasoning_tokens=reasoning,
                cost_usd=Decimal(cost) if cost is not None else None,
                duration_ms=duration_ms,
            )
        await conn.execute(
            update(agent_runs_table).where(agent_runs_table.c.id == opened.id).values(started_at=started)
        )


async def seed_usage(
    database: Database, run: ProtocolRun, steps: list[StepRun], *, day_1: datetime = DAY_1
) -> None:
    """Planning on `day_1` (priced); 49 hours later each step's execution (priced) and QA (unpriced),
    and one run still going; QA failed the first step once, then passed every step."""
    day_3 = day_1 + timedelta(days=2, hours=1)
    await _agent_run(
        database,
        run,
        None,
        Stage.PLANNING,
        day_1,
        model="gpt-5.1",
        cost="0.5",
        tokens=(1000, 100, 200, 50),
        duration_ms=3000,
    )
    for number, step in enumerate(steps, start=1):
        await _agent_run(
            database,
            run,
            step,
            Stage.EXECUTION,
            day_3,
            model="gpt-5.1",
            cost="1.25",
            tokens=(2000, 0, 300, 0),
            duration_ms=4000 * number,
        )
        await _agent_run(
            database,
            run,
            step,
            Stage.QA,
            day_3,
            model=None,
            cost=None,
            tokens=(500, 0, 100, 0),
            duration_ms=1000,
        )
    await _agent_run(
        database,
        run,
        steps[0],
        Stage.EXECUTION,
        day_3,
        model="gpt-5.1",
        cost=None,
        tokens=(0, 0, 0, 0),
        duration_ms=0,
        status=AgentRunStatus.RUNNING,
    )
    async with database.transaction() as conn:
        verdicts = [(steps[0], "fail")] + [(step, "pass") for step in steps]
        for step, verdict in verdicts:
            await record(
                conn,
                run.project_id,
                "qa.verdict",
                f"QA {verdict}",
                step=step,
                verdict=verdict,
                summary="seeded",
                findings=[],
                report=None,
                agent_run_id=None,
            )
