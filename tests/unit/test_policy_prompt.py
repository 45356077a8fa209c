"""The planner is told what the findings will hold its plan to, and nothing when nothing is required."""

from __future__ import annotations

import pytest

from app.domain.policy import STRICTNESS, merge
from app.domain.policy_prompt import (
    NONE,
    NOTHING_MORE,
    STRICTNESS_RULES,
    execution_requirements,
    planning_requirements,
    qa_requirements,
)


def test_every_requirement_the_findings_check_is_told() -> None:
    policy, _ = merge(
        {
            "plan": {"required_sections": ["Goal", "Risks"], "max_steps": 5},
            "steps": {"required_sections": ["Acceptance criteria"]},
            "checks": {"required": ["pytest -q"]},
            "paths": {"forbidden": [".github/workflows/**"]},
        }
    )
    told = planning_requirements(policy)
    assert told.splitlines() == [
        "- plan.md must have these sections, each as a `##` heading: `Goal`, `Risks`.",
        "- At most 5 steps.",
        "- Every step file must have these sections, each as a `##` heading: `Acceptance criteria`.",
        "- Each step must run, and pass, these checks: `pytest -q`.",
        "- No step may change these paths: `.github/workflows/**`.",
    ]


def test_an_empty_policy_requires_nothing() -> None:
    assert planning_requirements(merge({})[0]) == NONE


def test_the_executing_agent_is_told_the_checks_the_paths_and_the_commit_convention() -> None:
    policy, _ = merge(
        {
            "checks": {"required": ["make lint", "pytest -q"]},
            "paths": {"forbidden": ["secrets/**"]},
            "git": {"commit_convention": "Conventional Commits"},
        }
    )
    assert execution_requirements(policy).splitlines() == [
        "- Run each of these checks and make it pass before you finish: `make lint`, `pytest -q`.",
        "- Do not change these paths: `secrets/**`.",
        "- The project's commit convention is `Conventional Commits`. You do not commit (the orchestrator "
        "commits your work as `feat: <step title> [protocol-NNNN/NN]`), but follow the convention in "
        "whatever you write that describes your change, such as your entry in `log.md`.",
    ]
    assert execution_requirements(merge({})[0]) == NOTHING_MORE


@pytest.mark.parametrize("strictness", ["lenient", "normal", "strict"])
def test_the_qa_agent_is_told_its_strictness_and_the_required_checks(strictness) -> None:
    policy, _ = merge({"qa": {"strictness": strictness}, "checks": {"required": ["pytest -q"]}})
    first, checks = qa_requirements(policy).splitlines()
    assert first == f"- Strictness {strictness}: {STRICTNESS_RULES[strictness]}"
    assert checks.startswith("- Run each of these required checks yourself: `pytest -q`.")


def test_each_strictness_says_something_different_and_an_empty_policy_is_judged_normally() -> None:
    assert len(set(STRICTNESS_RULES.values())) == len(STRICTNESS) == len(STRICTNESS_RULES)
    assert qa_requirements(merge({})[0]) == f"- Strictness normal: {STRICTNESS_RULES['normal']}"
    assert "could not verify" in STRICTNESS_RULES["strict"]
    assert "and pass" in STRICTNESS_RULES["lenient"]
