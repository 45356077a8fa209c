"""Running one agent for a use case: recorded before it starts, its usage and transcript stored after."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import prompts
from app.domain.agents import AgentRequest, AgentResult, redacted
from app.domain.events import NewEvent
from app.domain.fallbacks import EngineReason, result_failure_reason, start_failure_reason
from app.domain.records import AgentRun, AgentRunStatus, Project, ProtocolRun, Stage, StepRun
from app.domain.redaction import Redactor
from app.domain.selection import EngineChoice
from app.engines.registry import pick
from app.errors import TasksGodzillaError
from app.logs import current_correlation_id, get_logger
from app.services.budgets import start_within_budget
from app.services.choices import engine_for
from app.services.context import Services
from app.services.credentials import git_credential
from app.store import agent_runs, events
from app.store.agent_runs import RunningJob

log = get_logger(__name__)
MAX_STORED_LOG_CHARS = 4 * 1024 * 1024
CORRELATION_VARIABLE = "CORRELATION_ID"

# The job this task is running, set by the job wrapper (app/jobs/tasks.py): recorded on each agent
# run so that only the death of that worker (or the end of that job) ever makes it "abandoned".
_current_job: ContextVar[RunningJob | None] = ContextVar("tasksgodzilla_current_job", default=None)


@contextlib.contextmanager
def running_job(job_id: int, attempt: int, worker_id: int | None) -> Iterator[None]:
    """Within the block, agent runs are recorded as run by this job's try on this worker."""
    token = _current_job.set(RunningJob(job_id, attempt, worker_id))
    try:
        yield
    finally:
        _current_job.reset(token)


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
    """Record, run, and close an agent run; the engine's own failure is a result, not an exception.

    When it fails for an engine reason (app.domain.fallbacks) and `choice` has fallbacks, the next
    one is tried, an agent run of its own, after an `agent.fallback` event saying why. The last try
    gives the answer (its run and result), or raises what it raised.

    Every string of the result (and the message of anything the engine raises) is redacted here, as
    it enters the service, before anything stores, writes, commits or shows it: the one place.
    Budgets are checked here too, before every agent run of every stage (BudgetExceededError).
    """
    redactor = await redactor_for(svc, subject)
    tries = (choice, *choice.fallbacks)
    for number, current in enumerate(tries, start=1):
        following = tries[number] if number < len(tries) else None
        recorded: list[AgentRun] = []  # the try's agent run, once started (a raise may come before)
        try:
            finished, result = await _run_once(
                svc,
                subject,
                stage=stage,
                choice=current,
                request=AgentRequest(
                    stage=stage,
                    prompt=redactor(prompt),  # no known secret ever reaches a model
                    workdir=workdir,
                    model=current.model,
                    output_schema=output_schema,
                    timeout_seconds=svc.settings.agent_timeout_seconds,
                    silence_seconds=svc.settings.agent_silence_seconds or None,
                    # The run's correlation id (the job's scope): an agent's own logs or calls can carry it.
                    environment={CORRELATION_VARIABLE: cid} if (cid := current_correlation_id()) else {},
                ),
                prompt_version=prompt_version,
                redactor=redactor,
                recorded=recorded,
            )
        except Exception as exc:
            reason = start_failure_reason(exc)
            if following is None or reason is None:
                raise
            message = exc.message if isinstance(exc, TasksGodzillaError) else str(exc)
            run_id = recorded[0].id if recorded else None
            await _fall_back(svc, subject, stage, current, following, reason, message, run_id)
            continue
        reason = result_failure_reason(
            result.status,
            result.error,
            exit_code=result.exit_code,
            answer=result.final_message,
            structured=result.structured_output is not None,
        )
        if following is None or reason is None:
            return finished, result
        await _fall_back(svc, subject, stage, current, following, reason, result.error, finished.id)
    raise AssertionError("unreachable: the last try returns or raises")


async def _run_once(
    svc: Services,
    subject: Subject,
    *,
    stage: Stage,
    choice: EngineChoice,
    request: AgentRequest,
    prompt_version: str,
    redactor: Redactor,
    recorded: list[AgentRun],
) -> tuple[AgentRun, AgentResult]:
    """One try: one engine and model, one agent run row (added to `recorded` once it exists), started
    only when the budgets can cover it."""
    engine = pick(svc.engines, choice.engine)

    async def close_superseded(conn: AsyncConnection) -> None:
        # Jobs of one subject never overlap: a run of this stage still "running" whose worker or job
        # is gone was abandoned; one whose worker is alive and still on its job is left alone.
        await agent_runs.close_superseded(
            conn,
            project_id=subject.project_id,
            protocol_run_id=subject.protocol_run_id,
            step_run_id=subject.step_run_id,
            stage=stage,
            stale_after_seconds=svc.settings.stalled_after_seconds,
        )

    async def begin(conn: AsyncConnection) -> AgentRun:
        record = await agent_runs.start(
            conn,
            project_id=subject.project_id,
            protocol_run_id=subject.protocol_run_id,
            step_run_id=subject.step_run_id,
            stage=stage,
            engine=choice.engine,
            model=choice.model,
            prompt_version=prompt_version,
            job=_current_job.get(),
        )
        recorded.append(record)
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
        return record

    # Checked and started in one transaction: a run started at the same moment waits, then counts this one.
    budget, record = await start_within_budget(
        svc,
        stage,
        choice.model,
        subject.project_id,
        subject.protocol_run_id,
        subject.step_run_id,
        start=begin,
        prepare=close_superseded,  # in the same transaction: one round of BEGIN/COMMIT less
    )
    request = AgentRequest(**{**dict(request), "max_budget_usd": budget.usd, "max_tokens": budget.tokens})
    try:
        with svc.tracing.span(
            f"agent {stage}",
            attributes={
                "tasksgodzilla.agent_run_id": record.id,
                "tasksgodzilla.stage": str(stage),
                "tasksgodzilla.engine": choice.engine,
                "tasksgodzilla.model": choice.model,
            },
        ):
            try:
                result = await engine.run(request)
            except TasksGodzillaError as exc:  # its message may quote the agent (a CLI's stderr)
                exc.message = redactor(exc.message)
                exc.args = (exc.message,)  # redacted before the span records it, too
                raise
            if result.status in (AgentRunStatus.FAILED, AgentRunStatus.TIMED_OUT):
                svc.tracing.fail_current(redactor(result.error or str(result.status)))
    except BaseException as exc:
        # Whatever stopped it (a start failure, a bug, a cancellation), the row must not stay running.
        await asyncio.shield(_close_interrupted(svc, subject, record, exc, redactor))
        raise
    result = await asyncio.to_thread(redacted, result, redactor)  # megabytes: off the event loop
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
                "engine": choice.engine,
                "model": choice.model,
                "status": str(result.status),
                "tokens": result.usage.total_tokens,
                "cost_usd": str(result.cost_usd) if result.cost_usd is not None else None,
                "duration_ms": result.duration_ms,
                "error": result.error,
                "secrets_redacted": result.secrets_redacted,  # names of settings, never values
            },
        )
    return finished, result


async def _fall_back(
    svc: Services,
    subject: Subject,
    stage: Stage,
    failed: EngineChoice,
    following: EngineChoice,
    reason: EngineReason,
    error: str | None,
    agent_run_id: int | None = None,
) -> None:
    """Say that the stage moves on to its next engine or model, and why (the error is redacted)."""
    log.warning(
        "agent fell back", stage=str(stage), engine=failed.engine, to=following.engine, reason=str(reason)
    )
    async with svc.database.transaction() as conn:
        await _event(
            conn,
            subject,
            "agent.fallback",
            f"{stage} agent on {failed.engine} {reason}: trying {following.engine}",
            {
                "agent_run_id": agent_run_id,  # None: it failed before its run was recorded
                "stage": str(stage),
                "from_engine": failed.engine,
                "from_model": failed.model,
                "to_engine": following.engine,
                "to_model": following.model,
                "reason": str(reason),
                "error": (error or "")[:2000],
            },
        )


async def redactor_for(svc: Services, subject: Subject) -> Redactor:
    """What is redacted from one agent run's prompt and output: every secret of the settings, and the
    project's git credential (agents never get it, but a repository or a guess may hold it)."""
    credential = await git_credential(svc, subject.project_id)
    if credential is None:
        return svc.redactor
    return svc.redactor.extended({"the project's git credential": credential.password})


async def _close_interrupted(
    svc: Services, subject: Subject, record: AgentRun, exc: BaseException, redactor: Redactor
) -> None:
    """Close a run whose engine raised or was cancelled, saying why."""
    if isinstance(exc, asyncio.CancelledError):
        status = AgentRunStatus.CANCELLED
        error = "cancelled: its job was aborted, or its worker or command was stopped"
    elif isinstance(exc, TasksGodzillaError):
        status, error = AgentRunStatus.FAILED, exc.message
    else:
        status, error = AgentRunStatus.FAILED, f"{type(exc).__name__}: {exc}"
    error = redactor(error)
    try:
        async with svc.database.transaction() as conn:
            await agent_runs.finish(conn, record.id, status=status, error=error)
            await _event(
                conn,
                subject,
                "agent.finished",
                f"{record.stage} agent {status}",
                {
                    "agent_run_id": record.id,
                    "stage": record.stage,
                    "engine": record.engine,
                    "model": record.model,
                    "status": status,
                    "error": error,
                },
            )
    except Exception as failure:  # the original exception matters more; the periodic scan closes it
        log.warning("could not close an interrupted agent run", agent_run_id=record.id, error=repr(failure))


async def close_abandoned_runs(svc: Services) -> int:
    """Close agent runs left running by a worker that died or a job that moved on (a periodic duty)."""
    async with svc.database.transaction() as conn:
        return await agent_runs.close_abandoned(conn, stale_after_seconds=svc.settings.stalled_after_seconds)


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
    choice: EngineChoice | None = None,
    **values: str,
) -> tuple[AgentRun, AgentResult]:
    """An agent working on one step: its stage's prompt, filled with the step's facts and `values`;
    on the stage's engine for this step, or on `choice` (a second QA opinion's)."""
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
        choice=choice or await engine_for(svc, stage, project, run, step),
        prompt=prompt,
        prompt_version=template.version,
        workdir=workdir,
        output_schema=output_schema,
    )
