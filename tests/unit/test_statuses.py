"""The status machines, pair by pair: every (from, to) is either in these lists or illegal."""

from __future__ import annotations

import itertools

import pytest

from app.domain.statuses import (
    PROTOCOL_TERMINAL,
    STEP_TERMINAL,
    ProtocolStatus,
    StepStatus,
    check_protocol_transition,
    check_step_transition,
    protocol_sources,
    step_sources,
)
from app.errors import ConflictError, IllegalTransitionError, spec_for

# Written out by hand from the plan's status model (and DESIGN.md), not derived from the code.
LEGAL_PROTOCOL_MOVES = {
    "pending->planning",
    "pending->cancelled",
    "planning->planned",
    "planning->blocked",
    "planning->failed",
    "planning->cancelled",
    "planned->running",
    "planned->planning",
    "planned->cancelled",
    "running->paused",
    "running->blocked",
    "running->failed",
    "running->cancelled",
    "running->completed",
    "paused->running",
    "paused->cancelled",
    "paused->completed",
    "blocked->running",
    "blocked->planning",
    "blocked->failed",
    "blocked->cancelled",
    "blocked->completed",
}

LEGAL_STEP_MOVES = {
    "pending->running",
    "pending->failed",  # past its attempts
    "pending->cancelled",
    "running->needs_qa",
    "running->failed",
    "running->blocked",
    "running->cancelled",
    "needs_qa->completed",
    "needs_qa->failed",
    "needs_qa->blocked",
    "needs_qa->cancelled",
    "completed->blocked",
    "failed->pending",
    "failed->completed",
    "failed->cancelled",
    "blocked->pending",
    "blocked->completed",
    "blocked->cancelled",
}


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(ProtocolStatus, repeat=2)), ids=lambda s: str(s)
)
def test_every_protocol_move_is_legal_exactly_when_the_plan_says(source, target):
    legal = f"{source}->{target}" in LEGAL_PROTOCOL_MOVES
    if legal:
        check_protocol_transition(source, target)
        assert source in protocol_sources(target)
    else:
        with pytest.raises(IllegalTransitionError) as raised:
            check_protocol_transition(source, target)
        assert raised.value.details == {"current": str(source), "target": str(target)}
        assert source not in protocol_sources(target)


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(StepStatus, repeat=2)), ids=lambda s: str(s)
)
def test_every_step_move_is_legal_exactly_when_the_plan_says(source, target):
    legal = f"{source}->{target}" in LEGAL_STEP_MOVES
    if legal:
        check_step_transition(source, target)
        assert source in step_sources(target)
    else:
        with pytest.raises(IllegalTransitionError):
            check_step_transition(source, target)
        assert source not in step_sources(target)


def test_terminal_statuses():
    assert PROTOCOL_TERMINAL == {ProtocolStatus.FAILED, ProtocolStatus.CANCELLED, ProtocolStatus.COMPLETED}
    assert STEP_TERMINAL == {StepStatus.CANCELLED}


def _reachable(start, moves):
    seen, frontier = {start}, [start]
    while frontier:
        current = frontier.pop()
        for move in moves:
            source, target = move.split("->")
            if source == current and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_every_status_is_reachable_from_pending_and_can_be_cancelled():
    assert _reachable("pending", LEGAL_PROTOCOL_MOVES) == {str(s) for s in ProtocolStatus}
    assert _reachable("pending", LEGAL_STEP_MOVES) == {str(s) for s in StepStatus}
    for status in ProtocolStatus:
        if status not in PROTOCOL_TERMINAL:
            assert "cancelled" in _reachable(str(status), LEGAL_PROTOCOL_MOVES)


def test_an_illegal_transition_is_a_conflict():
    with pytest.raises(ConflictError) as raised:
        check_step_transition(StepStatus.PENDING, StepStatus.COMPLETED)
    assert spec_for(raised.value).http_status == 409
