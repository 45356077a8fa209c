"""Second QA opinions: when a step takes one, from which engine and model, and what two decide."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.qa import read_verdict
from app.domain.second_opinion import (
    decide,
    distinct,
    is_critical,
    policy_second_opinion,
    second_opinion_for,
    unavailable_reason,
)
from app.domain.selection import EngineChoice
from app.domain.statuses import StepStatus as S

CODEX = EngineChoice("codex", None)
CODEX_A = EngineChoice("codex", "model-a")
CODEX_B = EngineChoice("codex", "model-b")
CLAUDE = EngineChoice("claude", None)


def _policy(second: Any) -> dict[str, Any]:
    return {"qa": {"strictness": "normal", "second_opinion": second}}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (CODEX, CLAUDE, True),
        (CODEX_A, CODEX_B, True),
        (CODEX_A, CODEX_A, False),
        (CODEX, CODEX_A, False),  # no model named: the engine's default may be model-a
        (CODEX_A, CODEX, False),
        (CODEX, CODEX, False),
    ],
)
def test_distinct_means_provably_another_judge(a, b, expected):
    assert distinct(a, b) is expected
    assert distinct(b, a) is expected


@pytest.mark.parametrize(
    ("policy", "first", "settings_qa", "expected"),
    [
        (_policy({"engine": "claude", "model": None}), CODEX, CODEX, CLAUDE),
        (_policy({"engine": None, "model": "model-b"}), CODEX_A, CODEX, CODEX_B),  # first's engine
        (_policy({"engine": "codex", "model": "model-a"}), CODEX_A, CLAUDE, CLAUDE),  # same: settings'
        (_policy({"engine": "codex", "model": "model-a"}), CODEX_A, CODEX_A, None),
        (_policy({"engine": "gpt-5", "model": None}), CODEX, CODEX, None),  # not an engine: unset
        (_policy(None), CLAUDE, CODEX, CODEX),  # the step or run chose claude; the settings codex
        (_policy(None), CODEX_A, CODEX, None),  # the settings' engine without a model: not distinct
        ({}, CODEX, CODEX, None),
    ],
)
def test_the_second_opinion_is_the_first_distinct_candidate(policy, first, settings_qa, expected):
    assert second_opinion_for(policy, first, settings_qa) == expected


def test_a_step_is_critical_when_marked_or_when_the_policy_asks():
    assert is_critical(True, {})
    assert is_critical(False, _policy({"engine": "claude", "model": None}))
    assert not is_critical(False, _policy(None))
    assert not is_critical(False, {"qa": "nonsense"})
    assert policy_second_opinion(_policy({"engine": " ", "model": "m"})) == (None, "m")


def test_the_refusal_names_what_to_configure():
    reason = unavailable_reason(CODEX_A)
    assert "codex/model-a" in reason
    assert "qa.second_opinion" in reason
    assert "TASKSGODZILLA_QA_ENGINE" in reason


def _verdict(verdict: str) -> Any:
    return read_verdict({"verdict": verdict, "summary": f"{verdict}ed", "findings": []})


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["pass"], S.COMPLETED),
        (["fail"], S.FAILED),
        (["pass", "pass"], S.COMPLETED),
        (["fail", "fail"], S.FAILED),
        (["pass", "fail"], S.BLOCKED),
        (["fail", "pass"], S.BLOCKED),
    ],
)
def test_two_opinions_decide_together(verdicts, expected):
    assert decide([_verdict(v) for v in verdicts]) is expected


def test_deciding_on_nothing_is_a_bug():
    with pytest.raises(ValueError, match="at least one"):
        decide([])
