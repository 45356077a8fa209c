"""The status machines of a protocol run and of a step run: pure data and pure functions.

The plan's chains, with the moves a real operator needs around them:

    ProtocolRun: pending → planning → planned → running → paused | blocked | failed | cancelled | completed
      - planning may end blocked (a recoverable job failure) or failed (a rejected plan);
      - blocked and paused go back to running (retry, resume); blocked may re-plan;
      - a merged PR/MR completes a run that is running, paused or blocked;
      - anything not finished may be cancelled.

    StepRun: pending → running → needs_qa → completed | failed | cancelled | blocked
      - execution may fail or block (job failure) without reaching QA; a pending step past its
        attempts (TASKSGODZILLA_STEP_MAX_ATTEMPTS) fails without running;
      - failed and blocked steps may be retried (back to pending) or approved by hand (completed);
      - CI failing on a completed step's commit blocks it.

Every status write in the store goes through `check_*_transition` and a compare-and-set on the
statuses returned by `*_sources`, so two writers can never both win.
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import IllegalTransitionError


class ProtocolStatus(StrEnum):
    PENDING = "pending"
    PLANNING = "planning"
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    BLOCKED = "blocked"
    FAILED = "failed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    NEEDS_QA = "needs_qa"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"


P = ProtocolStatus
S = StepStatus

PROTOCOL_TRANSITIONS: dict[ProtocolStatus, frozenset[ProtocolStatus]] = {
    P.PENDING: frozenset({P.PLANNING, P.CANCELLED}),
    P.PLANNING: frozenset({P.PLANNED, P.BLOCKED, P.FAILED, P.CANCELLED}),
    P.PLANNED: frozenset({P.RUNNING, P.PLANNING, P.CANCELLED}),
    P.RUNNING: frozenset({P.PAUSED, P.BLOCKED, P.FAILED, P.CANCELLED, P.COMPLETED}),
    P.PAUSED: frozenset({P.RUNNING, P.CANCELLED, P.COMPLETED}),
    P.BLOCKED: frozenset({P.RUNNING, P.PLANNING, P.FAILED, P.CANCELLED, P.COMPLETED}),
    P.FAILED: frozenset(),
    P.CANCELLED: frozenset(),
    P.COMPLETED: frozenset(),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    S.PENDING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.NEEDS_QA, S.FAILED, S.BLOCKED, S.CANCELLED}),
    S.NEEDS_QA: frozenset({S.COMPLETED, S.FAILED, S.BLOCKED, S.CANCELLED}),
    S.COMPLETED: frozenset({S.BLOCKED}),
    S.FAILED: frozenset({S.PENDING, S.COMPLETED, S.CANCELLED}),
    S.BLOCKED: frozenset({S.PENDING, S.COMPLETED, S.CANCELLED}),
    S.CANCELLED: frozenset(),
}

PROTOCOL_TERMINAL = frozenset(s for s, targets in PROTOCOL_TRANSITIONS.items() if not targets)
STEP_TERMINAL = frozenset(s for s, targets in STEP_TRANSITIONS.items() if not targets)

# Statuses that mean "moved on": reaching one clears the row's `last_error`, so a run that completed
# after a QA failure does not keep showing it. A step keeps its error while it runs again: the fix-CI
# prompt is built from it.
PROTOCOL_MOVED_ON = frozenset({P.PLANNING, P.PLANNED, P.RUNNING, P.COMPLETED})
STEP_MOVED_ON = frozenset({S.NEEDS_QA, S.COMPLETED})


def _sources(table: dict, target: StrEnum) -> frozenset:
    return frozenset(source for source, targets in table.items() if target in targets)


def protocol_sources(target: ProtocolStatus) -> frozenset[ProtocolStatus]:
    """The statuses a protocol run may move to `target` from."""
    return _sources(PROTOCOL_TRANSITIONS, target)


def step_sources(target: StepStatus) -> frozenset[StepStatus]:
    """The statuses a step run may move to `target` from."""
    return _sources(STEP_TRANSITIONS, target)


def check_protocol_transition(current: ProtocolStatus, target: ProtocolStatus) -> None:
    """Raise IllegalTransitionError unless a protocol run may move from `current` to `target`."""
    if target not in PROTOCOL_TRANSITIONS[current]:
        raise IllegalTransitionError(
            f"protocol run cannot go from {current} to {target}",
            current=str(current),
            target=str(target),
        )


def check_step_transition(current: StepStatus, target: StepStatus) -> None:
    """Raise IllegalTransitionError unless a step run may move from `current` to `target`."""
    if target not in STEP_TRANSITIONS[current]:
        raise IllegalTransitionError(
            f"step run cannot go from {current} to {target}",
            current=str(current),
            target=str(target),
        )
