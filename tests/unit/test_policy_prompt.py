"""The planner is told what the findings will hold its plan to, and nothing when nothing is required."""

from __future__ import annotations

from app.domain.policy import merge
from app.domain.policy_prompt import NONE, planning_requirements


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
