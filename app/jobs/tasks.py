"""The tasks: ids in, one service call each, failures mapped to statuses after the last try."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import procrastinate
from procrastinate import JobContext

from app.domain.workflow import JobName, is_recoverable
from app.errors import IllegalTransitionError, StaleWriteError, TasksGodzillaError
from app.jobs.retry import RetryPolicy
from app.logs import correlation_scope, get_logger
from app.services import execution, planning, projects, publishing, quality
from app.services.context import Services
from app.services.failures import record_gave_up, record_retry

log = get_logger(__name__)
SERVICES_KEY = "services"


def services_of(context: JobContext) -> Services:
    return context.additional_context[SERVICES_KEY]


async def guarded(
    context: JobContext,
    action: Callable[[Services], Awaitable[object]],
    give_up: Callable[[Services, str, bool], Awaitable[None]],
    subject: tuple[str, int],
) -> None:
    """Run `action`; a recoverable failure is retried until the last try, then `give_up` records it."""
    svc = services_of(context)
    job = context.job
    with correlation_scope(f"job-{job.id}", job=job.task_name, attempt=job.attempts):
        try:
            await action(svc)
        except (StaleWriteError, IllegalTransitionError) as lost:
            # Someone else moved the state on first (an operator, a retried twin): nothing left to do.
            log.info("job lost a race", error=lost.message)
        except Exception as exc:
            reason = exc.message if isinstance(exc, TasksGodzillaError) else f"{type(exc).__name__}: {exc}"
            recoverable = is_recoverable(exc)
            if recoverable and job.attempts + 1 < svc.settings.job_max_attempts:
                await record_retry(svc, subject, job.task_name, job.attempts + 1, reason)
                raise
            log.warning("job gave up", error=reason, terminal=not recoverable)
            await give_up(svc, reason, not recoverable)
            await record_gave_up(svc, subject, job.task_name, job.attempts + 1, reason, not recoverable)


def register_tasks(app: procrastinate.App, retry: RetryPolicy) -> None:
    """Attach every job to `app` under its JobName."""

    @app.task(name=JobName.PROJECT_SETUP.value, pass_context=True, retry=retry)
    async def project_setup_job(context: JobContext, project_id: int) -> None:
        await guarded(
            context,
            lambda svc: projects.setup_project(svc, project_id),
            lambda svc, reason, _terminal: projects.fail_setup(svc, project_id, reason),
            ("project", project_id),
        )

    @app.task(name=JobName.PLAN_PROTOCOL.value, pass_context=True, retry=retry)
    async def plan_protocol_job(context: JobContext, protocol_run_id: int) -> None:
        await guarded(
            context,
            lambda svc: planning.plan_protocol(svc, protocol_run_id),
            lambda svc, reason, terminal: planning.fail_planning(
                svc, protocol_run_id, reason, terminal=terminal
            ),
            ("protocol", protocol_run_id),
        )

    @app.task(name=JobName.EXECUTE_STEP.value, pass_context=True, retry=retry)
    async def execute_step_job(context: JobContext, step_run_id: int) -> None:
        await guarded(
            context,
            lambda svc: execution.execute_step(svc, step_run_id),
            lambda svc, reason, terminal: execution.fail_step(svc, step_run_id, reason, terminal=terminal),
            ("step", step_run_id),
        )

    @app.task(name=JobName.RUN_QUALITY.value, pass_context=True, retry=retry)
    async def run_quality_job(context: JobContext, step_run_id: int) -> None:
        await guarded(
            context,
            lambda svc: quality.run_quality(svc, step_run_id),
            lambda svc, reason, terminal: execution.fail_step(svc, step_run_id, reason, terminal=terminal),
            ("step", step_run_id),
        )

    @app.task(name=JobName.OPEN_PR.value, pass_context=True, retry=retry)
    async def open_pr_job(context: JobContext, protocol_run_id: int) -> None:
        await guarded(
            context,
            lambda svc: publishing.open_pr(svc, protocol_run_id),
            lambda svc, reason, _terminal: publishing.fail_publishing(svc, protocol_run_id, reason),
            ("protocol", protocol_run_id),
        )
