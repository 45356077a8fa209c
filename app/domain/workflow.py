"""What a protocol run needs next, and how jobs are named and locked: pure decisions, no queue.

One function, `next_work`, decides for the job chain (after each job) and for the scheduler (when
a job went missing) alike, so the two can never disagree about what comes next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.domain.ci import wants_qa_after_ci
from app.domain.records import StepRun
from app.domain.statuses import ProtocolStatus, StepStatus
from app.errors import AgentError, BudgetExceededError, CIError, GitError, UnavailableError


class JobName(StrEnum):
    PROJECT_SETUP = "project_setup_job"
    PLAN_PROTOCOL = "plan_protocol_job"
    EXECUTE_STEP = "execute_step_job"
    RUN_QUALITY = "run_quality_job"
    OPEN_PR = "open_pr_job"
    AUTO_MERGE = "auto_merge_job"
    APPLY_WEBHOOK = "apply_webhook_job"
    DELIVER_NOTIFICATION = "deliver_notification_job"
    REVIEW_REPLIES = "review_replies_job"


@dataclass(frozen=True)
class Work:
    """One job to defer: its name, its id arguments, and its locks.

    `queueing_lock`: at most one such job waits in the queue. `lock`: no two such jobs run at once
    (a retried job never overlaps a live twin). The jobs of one protocol never overlap anyway: each
    is deferred only when the one before it has finished (`next_work`), and every status write is a
    compare-and-set. (One protocol-wide lock would serialise the same, but a job deferred by a job
    holding that lock is only picked up at the next poll, not on its NOTIFY.)
    """

    job: JobName
    args: tuple[tuple[str, int], ...]
    lock: str
    queueing_lock: str

    @property
    def kwargs(self) -> dict[str, int]:
        return dict(self.args)


def _work(job: JobName, key: str, name: str, entity_id: int) -> Work:
    lock = f"{key}:{entity_id}"
    return Work(job, ((name, entity_id),), lock=lock, queueing_lock=lock)


def setup_work(project_id: int) -> Work:
    return _work(JobName.PROJECT_SETUP, "setup", "project_id", project_id)


def plan_work(protocol_run_id: int) -> Work:
    return _work(JobName.PLAN_PROTOCOL, "plan", "protocol_run_id", protocol_run_id)


def execute_work(step: StepRun) -> Work:
    return _work(JobName.EXECUTE_STEP, "execute", "step_run_id", step.id)


def quality_work(step: StepRun) -> Work:
    return _work(JobName.RUN_QUALITY, "qa", "step_run_id", step.id)


def publish_work(protocol_run_id: int) -> Work:
    return _work(JobName.OPEN_PR, "pr", "protocol_run_id", protocol_run_id)


def auto_merge_work(protocol_run_id: int) -> Work:
    """Merge the run's PR/MR (its policy allows auto-merge and the run looks ready)."""
    return _work(JobName.AUTO_MERGE, "merge", "protocol_run_id", protocol_run_id)


def review_replies_work(protocol_run_id: int) -> Work:
    """Post the agent's answers to review comments as replies on the run's PR/MR."""
    return _work(JobName.REVIEW_REPLIES, "replies", "protocol_run_id", protocol_run_id)


def webhook_work(delivery_id: int, repository: str) -> Work:
    """Apply one webhook delivery; deliveries about one repository are applied one at a time."""
    return Work(
        JobName.APPLY_WEBHOOK,
        (("delivery_id", delivery_id),),
        lock=f"webhook:{repository.casefold()}",
        queueing_lock=f"webhook:{delivery_id}",
    )


def protocol_locks(protocol_run_id: int, step_ids: Sequence[int]) -> list[str]:
    """Every lock a job of this protocol run may hold (to abort them all on cancel)."""
    locks = [
        f"plan:{protocol_run_id}",
        f"pr:{protocol_run_id}",
        f"merge:{protocol_run_id}",
        f"replies:{protocol_run_id}",
    ]
    return locks + [f"{kind}:{step_id}" for step_id in step_ids for kind in ("execute", "qa")]


def next_work(
    protocol_status: ProtocolStatus,
    steps: Sequence[StepRun],
    *,
    auto_qa: bool,
    qa_on_ci: bool = False,
    awaiting_merge: bool = False,
) -> list[Work]:
    """The job a running protocol needs now: the first unfinished step's, or publishing when all are done.

    QA is queued right after execution (`auto_qa`), or once CI passed the step's commit (`qa_on_ci`).
    A run whose PR/MR is published at its head (`awaiting_merge`) waits for the merge webhook.
    """
    if protocol_status is not ProtocolStatus.RUNNING or not steps:
        return []
    for step in sorted(steps, key=lambda s: s.step_index):
        if step.status is StepStatus.COMPLETED:
            continue
        if step.status is StepStatus.PENDING:
            return [execute_work(step)]
        if step.status is StepStatus.NEEDS_QA and (auto_qa or wants_qa_after_ci(step, qa_on_ci=qa_on_ci)):
            return [quality_work(step)]
        return []  # running (its job is in flight), or waiting for a person or for CI
    return [] if awaiting_merge else [publish_work(steps[0].protocol_run_id)]


# The failures another try can cure. OSError covers ConnectionError and TimeoutError (asyncio's too).
RECOVERABLE: tuple[type[BaseException], ...] = (UnavailableError, GitError, AgentError, CIError, OSError)


def is_recoverable(error: BaseException) -> bool:
    """Worth another try: the network, the database, git, an agent that crashed or timed out.

    Nothing else: bad input, a rejected plan, credentials, configuration or a budget give the same
    answer again, and an exception we do not know (KeyError, TypeError …) is a bug, which another
    try would only repeat after paying for the agent runs before it once more.
    """
    return isinstance(error, RECOVERABLE)


def is_terminal(error: BaseException) -> bool:
    """Giving up on it fails its subject for good, rather than blocking it for a person: anything not
    recoverable but a budget's refusal, which an operator's raise undoes."""
    return not is_recoverable(error) and not isinstance(error, BudgetExceededError)


def retry_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds before try `attempt + 1`: exponential from `base`, capped, spread by `jitter` in [0, 1)."""
    exponential = min(cap, base * (2 ** max(0, attempt - 1)))
    # Full jitter on the upper half: retries of many jobs spread out, none waits less than half.
    return exponential / 2 + exponential / 2 * jitter
