"""The tasks: ids in, one service call each, failures mapped to statuses after the last try."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable

import procrastinate
import psycopg
from procrastinate import JobContext
from procrastinate.exceptions import ConnectorException

from app.domain.workflow import JobName, is_recoverable, is_terminal
from app.errors import IllegalTransitionError, StaleWriteError, TasksGodzillaError
from app.jobs.fencing import holds
from app.jobs.retry import RetryPolicy
from app.logs import correlation_scope, get_logger
from app.services import auto_merge, execution, planning, projects, publishing, quality, reviews, webhooks
from app.services.agents import running_job
from app.services.context import Services
from app.services.failures import record_gave_up, record_retry
from app.services.job_memo import job_memo
from app.store import protocols
from app.store.database import Database
from app.store.protocols import RunIdentity
from app.tracing import RunKey, trace_id_hex

log = get_logger(__name__)
SERVICES_KEY = "services"


class GaveUp(str):
    """A job's result when it gave up (its failure recorded on its subject): Procrastinate sees a
    job that returned, so `GaveUpOutcome` rewrites its "Success" line."""


class GaveUpOutcome(logging.Filter):
    """Procrastinate logs a job that returned as "ended with status: Success"; one that gave up is
    said to have given up, as a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "action", None) == "job_success" and isinstance(
            getattr(record, "result", None), GaveUp
        ):
            record.msg = str(record.msg).replace("ended with status: Success", "gave up", 1)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


GAVE_UP_OUTCOME = GaveUpOutcome()  # one instance: adding it to a logger twice is a no-op


def services_of(context: JobContext) -> Services:
    return context.additional_context[SERVICES_KEY]


def worth_retrying(error: BaseException) -> bool:
    """`is_recoverable`, or the job queue's connection lost (Procrastinate wraps psycopg's error)."""
    if isinstance(error, ConnectorException):
        return isinstance(error.__cause__, psycopg.OperationalError)
    return is_recoverable(error)


def _gave_up(error: BaseException, reason: str, *, recoverable: bool, **context: object) -> None:
    if recoverable or isinstance(error, TasksGodzillaError):
        log.warning("job gave up", error=reason, terminal=not recoverable, **context)
    else:  # a bug: at once, with its traceback
        log.error("job failed on an unexpected error; not retried", exc_info=error, **context)


async def _taken_over(context: JobContext, reason: str) -> bool:
    """This try froze and another worker took the job over: its failure is not for it to record."""
    if await holds(context.app.job_manager, context.job):
        return False
    log.warning("a late try of a taken-over job failed; its failure is dropped", error=reason)
    return True


async def guarded(
    context: JobContext,
    action: Callable[[Services], Awaitable[object]],
    give_up: Callable[[Services, str, bool], Awaitable[None]],
    subject: tuple[str, int],
) -> GaveUp | None:
    """Run `action`; a recoverable failure is retried until the last try, then `give_up` records it
    (and the job returns why it gave up)."""
    svc = services_of(context)
    job = context.job
    assert job.id is not None
    kind, entity_id = subject
    found = await _identity(svc, kind, entity_id)
    run = RunKey(found.id, found.created_at) if found is not None and svc.tracing.enabled else None
    with (
        # A run's jobs log (and stamp their events) under its correlation id; with tracing on, their
        # log lines also name the run's trace (found in the tracing back end by it).
        correlation_scope(
            found.correlation_id if found is not None else f"job-{job.id}",
            job=job.task_name,
            job_id=job.id,
            attempt=job.attempts,
            **({"trace_id": trace_id_hex(run)} if run is not None else {}),
        ),
        running_job(job.id, job.attempts, job.worker_id),
        job_memo(),  # what the job reads once (a run's recorded policy, a credential)
        svc.tracing.span(
            f"job {job.task_name}",
            run=run,
            attributes={
                "tasksgodzilla.job_id": job.id,
                "tasksgodzilla.attempt": job.attempts,
                f"tasksgodzilla.{kind}_id": entity_id,
            },
        ),
    ):
        try:
            await action(svc)
        except (StaleWriteError, IllegalTransitionError) as lost:
            # Someone else moved the state on first (an operator, a retried twin): nothing left to do.
            log.info("job lost a race", error=lost.message)
        except Exception as exc:
            reason = exc.message if isinstance(exc, TasksGodzillaError) else f"{type(exc).__name__}: {exc}"
            if await _taken_over(context, reason):
                return None
            recoverable = worth_retrying(exc)
            if recoverable and job.attempts + 1 < svc.settings.job_max_attempts:
                await record_retry(svc, subject, job.task_name, job.attempts + 1, reason)
                raise
            _gave_up(exc, reason, recoverable=recoverable)
            await give_up(svc, reason, is_terminal(exc))  # a budget's refusal blocks, never fails
            await record_gave_up(svc, subject, job.task_name, job.attempts + 1, reason, is_terminal(exc))
            return GaveUp(reason)
    return None


# The subjects that belong to a protocol run, and how its trace key is found from their id.
_RUN_OF = {"protocol": "protocol_run_id", "step": "step_run_id"}
# A run's identity (id, creation time, correlation id) never changes: read once per subject and
# database in this process (a step's QA job finds what its execution job read); bounded, dropped
# whole when full.
_IDENTITIES: weakref.WeakKeyDictionary[Database, dict[tuple[str, int], RunIdentity]]
_IDENTITIES = weakref.WeakKeyDictionary()
_IDENTITIES_MAX = 10_000


async def _identity(svc: Services, kind: str, entity_id: int) -> RunIdentity | None:
    """The identity of the run a job's subject belongs to (None: not a run's, or gone)."""
    if kind not in _RUN_OF:
        return None
    known = _IDENTITIES.setdefault(svc.database, {})
    found = known.get((kind, entity_id))
    if found is None:
        async with svc.database.read() as conn:
            found = await protocols.identity(conn, **{_RUN_OF[kind]: entity_id})
        if found is not None:
            if len(known) >= _IDENTITIES_MAX:
                known.clear()
            known[(kind, entity_id)] = found
    return found


Action = Callable[[Services, int], Awaitable[object]]
GiveUp = Callable[..., Awaitable[None]]

# Each job: its id argument, what kind of subject that id names, the service call, and what giving up
# means for that subject.
JOBS: dict[JobName, tuple[str, str, Action, GiveUp]] = {
    JobName.PROJECT_SETUP: ("project_id", "project", projects.setup_project, projects.fail_setup),
    JobName.PLAN_PROTOCOL: ("protocol_run_id", "protocol", planning.plan_protocol, planning.fail_planning),
    JobName.EXECUTE_STEP: ("step_run_id", "step", execution.execute_step, execution.fail_step),
    JobName.RUN_QUALITY: ("step_run_id", "step", quality.run_quality, execution.fail_step),
    JobName.OPEN_PR: ("protocol_run_id", "protocol", publishing.open_pr, publishing.fail_publishing),
    JobName.AUTO_MERGE: ("protocol_run_id", "protocol", auto_merge.auto_merge, auto_merge.fail_auto_merge),
    JobName.REVIEW_REPLIES: ("protocol_run_id", "protocol", reviews.post_replies, reviews.fail_replies),
}


def register_tasks(app: procrastinate.App, retry: RetryPolicy) -> None:
    """Attach every job to `app` under its JobName."""
    for name, (argument, kind, action, give_up) in JOBS.items():
        app.task(name=name.value, pass_context=True, retry=retry)(_task(argument, kind, action, give_up))
    app.task(name=JobName.APPLY_WEBHOOK.value, pass_context=True, retry=retry)(apply_webhook)
    logging.getLogger("procrastinate.worker").addFilter(GAVE_UP_OUTCOME)


async def apply_webhook(context: JobContext, delivery_id: int) -> GaveUp | None:
    """Apply one recorded webhook delivery; after the last try, the delivery is marked failed."""
    svc = services_of(context)
    job = context.job
    with correlation_scope(f"job-{job.id}", job=job.task_name, attempt=job.attempts, delivery=delivery_id):
        try:
            await webhooks.apply_delivery(svc, delivery_id)  # traced there: its run is known at the end
        except Exception as exc:
            reason = exc.message if isinstance(exc, TasksGodzillaError) else f"{type(exc).__name__}: {exc}"
            if await _taken_over(context, reason):
                return None
            recoverable = worth_retrying(exc)
            if recoverable and job.attempts + 1 < svc.settings.job_max_attempts:
                raise
            _gave_up(exc, reason, recoverable=recoverable, delivery=delivery_id)
            await webhooks.fail_delivery(svc, delivery_id, reason)
            return GaveUp(reason)
    return None


def _task(
    argument: str, kind: str, action: Action, give_up: GiveUp
) -> Callable[..., Awaitable[GaveUp | None]]:
    async def task(context: JobContext, **ids: int) -> GaveUp | None:
        entity_id = ids[argument]
        return await guarded(
            context,
            lambda svc: action(svc, entity_id),
            lambda svc, reason, terminal: give_up(svc, entity_id, reason, terminal=terminal),
            (kind, entity_id),
        )

    return task
