"""What an operator may do to a protocol run or a step right now, and why not: one rule set for the
services (which refuse with the reason), the console and the CLI (which offer only what is allowed).

Beyond the status machine, the rules keep work safe:
  - planning (`start`) is for a run without steps: a pending run, or a blocked one whose planning
    failed; a run with steps is resumed or its steps retried, never re-planned over its own commits;
  - steps run in order: the next step is the first one not completed, and only if it is pending;
  - `resume` needs nothing failed or blocked in the way (retry or approve that step first).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from app.domain.records import StepRun
from app.domain.statuses import PROTOCOL_TERMINAL, protocol_sources, step_sources
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S

STUCK = (S.FAILED, S.BLOCKED)


class RunAction(StrEnum):
    START = "start"
    RUN_NEXT_STEP = "run_next_step"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    OPEN_PR = "open_pr"


class StepAction(StrEnum):
    RUN = "run"
    RETRY = "retry"
    RUN_QA = "run_qa"
    APPROVE = "approve"


def next_unfinished(steps: Sequence[StepRun]) -> StepRun | None:
    """The first step, in order, that is not completed (cancelled steps end a run, so count too)."""
    return next((s for s in sorted(steps, key=lambda s: s.step_index) if s.status is not S.COMPLETED), None)


def run_action_refusal(
    action: RunAction, status: P, steps: Sequence[StepRun], *, has_branch: bool = True
) -> str | None:
    """Why `action` is not allowed on a run in `status` with `steps`; None when it is."""
    stuck = next((s for s in sorted(steps, key=lambda s: s.step_index) if s.status in STUCK), None)
    if action is RunAction.START:
        if status is P.BLOCKED and steps:
            return (
                "the run has steps: retry or approve the stuck step, then resume "
                "(planning again would drop its commits)"
            )
        if status not in (P.PENDING, P.PLANNED, P.BLOCKED):
            return f"a {status} run cannot be started"
        return None
    if action is RunAction.RUN_NEXT_STEP:
        if status is not P.RUNNING:
            return f"the run is {status}, not running"
        step = next_unfinished(steps)
        if step is None:
            return "every step is completed"
        if step.status is not S.PENDING:
            return f"step {step.step_index} is {step.status}" + (
                ": retry or approve it first" if step.status in STUCK else ""
            )
        return None
    if action is RunAction.PAUSE:
        return None if status in protocol_sources(P.PAUSED) else f"a {status} run cannot be paused"
    if action is RunAction.RESUME:
        if status not in (P.PAUSED, P.BLOCKED):
            return f"a {status} run cannot be resumed"
        if not steps:
            return "the run has no steps yet: start it to plan again"
        if stuck is not None:
            return f"step {stuck.step_index} is {stuck.status}: retry or approve it first"
        return None
    if action is RunAction.CANCEL:
        return None if status in protocol_sources(P.CANCELLED) else f"a {status} run cannot be cancelled"
    # OPEN_PR
    if status not in (P.RUNNING, P.PAUSED, P.BLOCKED) or not has_branch:
        return f"the run has no branch to publish ({status})"
    return None


def step_action_refusal(
    action: StepAction, step: StepRun, run_status: P, steps: Sequence[StepRun]
) -> str | None:
    """Why `action` is not allowed on `step` of a run in `run_status` with `steps`; None when it is."""
    if run_status in PROTOCOL_TERMINAL:
        return f"the run is {run_status}"
    if action is StepAction.RUN:
        if run_status is not P.RUNNING:
            return f"the run is {run_status}, not running"
        first = next_unfinished(steps)
        if step.status is not S.PENDING:
            return f"step {step.step_index} is {step.status}, not pending"
        if first is not None and first.id != step.id:
            return f"step {first.step_index} comes first and is {first.status}"
        return None
    if action is StepAction.RETRY:
        return None if step.status in step_sources(S.PENDING) else f"step {step.step_index} is {step.status}"
    if action is StepAction.RUN_QA:
        if step.status is not S.NEEDS_QA:
            return f"step {step.step_index} is {step.status}, not waiting for QA"
        return None
    # APPROVE
    return None if step.status in step_sources(S.COMPLETED) else f"step {step.step_index} is {step.status}"


def allowed_run_actions(status: P, steps: Sequence[StepRun], *, has_branch: bool = True) -> list[RunAction]:
    return [a for a in RunAction if run_action_refusal(a, status, steps, has_branch=has_branch) is None]


def allowed_step_actions(step: StepRun, run_status: P, steps: Sequence[StepRun]) -> list[StepAction]:
    return [a for a in StepAction if step_action_refusal(a, step, run_status, steps) is None]
