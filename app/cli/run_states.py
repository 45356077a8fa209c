"""Where a protocol run stands for the commands that wait on it: resting or not, the step waiting for a
person, and the line that says so with the command that moves it on. Pure: both modes (local and over
HTTP) decide and print with these."""

from __future__ import annotations

from app.domain.actions import RunAction, StepAction, allowed_run_actions, allowed_step_actions
from app.domain.ci import waits_for_ci
from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import ConflictError

RESTING = frozenset({P.COMPLETED, P.BLOCKED, P.FAILED, P.CANCELLED, P.PAUSED})
HAS_PLAN = frozenset({P.PLANNED, P.RUNNING, P.PAUSED, P.COMPLETED})
START, RESUME = "start", "resume"


def next_move(label: str, run: ProtocolRun, steps: list[StepRun]) -> str | None:
    """What sets the run going, by its status: START, RESUME, or None (follow it as it is);
    ConflictError when it cannot go on."""
    status = run.status
    if status in (P.PENDING, P.PLANNED) or (status is P.BLOCKED and not steps):
        return START
    if status is P.PAUSED or (status is P.BLOCKED and waiting_step(steps, auto_qa=True) is None):
        return RESUME
    if status in (P.BLOCKED, P.FAILED, P.CANCELLED):
        raise ConflictError(stopped_message(label, run, steps, auto_qa=True), status=str(status))
    return None


def move_done(move: str | None, run: ProtocolRun) -> str:
    """What was done, in a few words."""
    if move is not None:
        return {START: "started", RESUME: "resumed"}[move]
    return f"already {run.status}" if run.status is P.COMPLETED else f"{run.status}, following"


def count(steps: list[StepRun]) -> str:
    return f"{len(steps)} step" + ("" if len(steps) == 1 else "s")


def waiting_step(steps: list[StepRun], *, auto_qa: bool) -> StepRun | None:
    """The first unfinished step when it waits for a person (failed, blocked, or QA by hand)."""
    for step in sorted(steps, key=lambda s: s.step_index):
        if step.status is S.COMPLETED:
            continue
        if step.status in (S.FAILED, S.BLOCKED) or (step.status is S.NEEDS_QA and not auto_qa):
            return step
        return None
    return None


def stopped_message(
    label: str, run: ProtocolRun, steps: list[StepRun], *, auto_qa: bool, qa_on_ci: bool = False
) -> str:
    """One line: where the run rests, why, and the command that moves it on (`qa_on_ci`: CI
    success queues QA, so a step CI has not reported on waits for CI, not for a person)."""
    step = waiting_step(steps, auto_qa=auto_qa)
    text = f"{label} is {run.status}"
    if step is not None:
        text += f": step {step.step_index:02d} is {step.status}"
    if run.last_error and run.status in (P.BLOCKED, P.FAILED):
        text += f" ({run.last_error.splitlines()[0][:200]})"
    if run.status in (P.FAILED, P.CANCELLED):
        return text + "; it cannot run again"
    if step is not None:  # only what the operator rules allow now
        hints = {
            StepAction.RUN_QA: f"queue its QA with `protocol qa {step.id}`",
            StepAction.APPROVE: f"pass it: `protocol approve {step.id}`",
            StepAction.RETRY: f"redo it: `protocol retry {step.id} [--note …]`",
        }
        allowed = allowed_step_actions(step, run.status, steps)
        offered = [hint for action, hint in hints.items() if action in allowed]
        if waits_for_ci(step, qa_on_ci=qa_on_ci):
            commit = f" on {step.commit_sha[:10]}" if step.commit_sha else ""
            text += (
                f", waiting for CI to report{commit} (TASKSGODZILLA_AUTO_QA_ON_CI: QA starts when CI "
                "passes); if CI never reports, check that its webhook reaches this service, or"
            )
            return text + (" " + ", or ".join(offered) if offered else " wait")
        return text + ("; " + ", or ".join(offered) if offered else "")
    if run.status is P.PAUSED:
        return text + f"; carry on with `protocol run {label}`"
    if run.status is P.BLOCKED and RunAction.START in allowed_run_actions(run.status, steps):
        return text + f"; plan it again with `protocol plan {label}`"
    if run.status is P.BLOCKED:
        return text + f"; see `protocol status {label}`"
    return text
