"""Running one agent for a use case: recorded before it starts, its usage and transcript stored after."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import prompts
from app.domain.agents import AgentRequest, AgentResult
from app.domain.events import NewEvent
from app.domain.records import AgentRun, AgentRunStatus, Project, ProtocolRun, Stage, StepRun
from app.domain.selection import EngineChoice
from app.engines.registry import pick
from app.services.choices import engine_for
from app.services.context import Services
from app.store import agent_runs, events

MAX_STORED_LOG_CHARS = 4 * 1024 * 1024


@dataclass(frozen=True)
class Subject:
    """Whose agent run this is: a project, and maybe one of its runs and steps."""

    project_id: int
    protocol_run_id: int | None = None
    step_run_id: int | None = None


async def run_agent(
    svc: Services,
    subject: Subject,
    *,
    stage: Stage,
    choice: EngineChoice,
    prompt: str,
    prompt_version: str,
    workdir: Path,
    output_schema: dict[str, Any] | None = None,
) -> tuple[AgentRun, AgentResult]:
    """Record, run, and close one agent run; the engine's own failure is a result, not an exception."""
    engine = pick(svc.engines, choice.engine)
    async with svc.database.transaction() as conn:
        # Jobs of one subject never overlap: a run of this stage still "running" lost its worker.
        await agent_runs.abandon_running(
            conn,
            project_id=subject.project_id,
            protocol_run_id=subject.protocol_run_id,
            step_run_id=subject.step_run_id,
            stage=stage,
        )
        record = await agent_runs.start(
            conn,
            project_id=subject.project_id,
            protocol_run_id=subject.protocol_run_id,
            step_run_id=subject.step_run_id,
            stage=stage,
            engine=choice.engine,
            model=choice.model,
            prompt_version=prompt_version,
        )
        await _event(
            conn,
            subject,
            "agent.started",
            f"{stage} agent started ({choice.engine})",
            {
                "agent_run_id": record.id,
                "stage": str(stage),
                "engine": choice.engine,
                "model": choice.model,
                "prompt_version": prompt_version,
            },
        )
    request = AgentRequest(
        stage=stage,
        prompt=svc.redactor(prompt),  # no known secret ever reaches a model
        workdir=workdir,
        model=choice.model,
        output_schema=output_schema,
        timeout_seconds=svc.settings.agent_timeout_seconds,
    )
    result = await engine.run(request)
    transcript = result.transcript
    async with svc.database.transaction() as conn:
        finished = await _close(conn, record, result)
        await agent_runs.store_log(
            conn,
            record.id,
            transcript[:MAX_STORED_LOG_CHARS],
            truncated=len(transcript) > MAX_STORED_LOG_CHARS,
        )
        await _event(
            conn,
            subject,
            "agent.finished",
            f"{stage} agent {result.status}",
            {
                "agent_run_id": record.id,
                "stage": str(stage),
                "status": str(result.status),
                "tokens": result.usage.total_tokens,
                "cost_usd": str(result.cost_usd) if result.cost_usd is not None else None,
                "duration_ms": result.duration_ms,
                "error": result.error,
            },
        )
    return finished, result


async def _close(conn: Any, record: AgentRun, result: AgentResult) -> AgentRun:
    usage = result.usage
    return await agent_runs.finish(
        conn,
        record.id,
        status=result.status if result.status is not AgentRunStatus.RUNNING else AgentRunStatus.FAILED,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_usd=result.cost_usd,
        exit_code=result.exit_code,
        duration_ms=result.duration_ms,
        log_path=f"agent_logs/{record.id}",
        error=result.error,
    )


async def _event(conn: Any, subject: Subject, kind: str, message: str, payload: dict[str, Any]) -> None:
    await events.append(
        conn,
        NewEvent(
            project_id=subject.project_id,
            protocol_run_id=subject.protocol_run_id,
            step_run_id=subject.step_run_id,
            event_type=kind,
            message=message,
            payload=payload,
        ),
    )


async def run_step_agent(
    svc: Services,
    step: StepRun,
    *,
    project: Project,
    run: ProtocolRun,
    stage: Stage,
    workdir: Path,
    output_schema: dict[str, Any] | None = None,
    **values: str,
) -> tuple[AgentRun, AgentResult]:
    """An agent working on one step: its stage's prompt, filled with the step's facts and `values`."""
    template = prompts.load(str(stage))
    prompt = template.render(
        branch_name=run.branch_name or "",
        protocol_name=run.name,
        step_file=step.step_file,
        step_number=f"{step.step_index:02d}",
        step_title=step.name,
        **values,
    )
    return await run_agent(
        svc,
        Subject(project.id, run.id, step.id),
        stage=stage,
        choice=engine_for(svc, stage, project, run, step),
        prompt=prompt,
        prompt_version=template.version,
        workdir=workdir,
        output_schema=output_schema,
    )
