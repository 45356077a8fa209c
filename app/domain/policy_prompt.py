"""What a planner is told of the run's policy: the sections, step count, checks and paths that the
findings (app/domain/findings.py) will hold its plan and steps to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NONE = "(none: this project's policy requires nothing of the plan)"


def planning_requirements(policy: Mapping[str, Any]) -> str:
    """Markdown bullets, one per requirement of the effective `policy`; NONE when it has none."""
    plan = policy.get("plan") or {}
    steps = policy.get("steps") or {}
    lines = []
    if sections := plan.get("required_sections"):
        lines.append(f"- plan.md must have these sections, each as a `##` heading: {_listed(sections)}.")
    if (most := plan.get("max_steps")) is not None:
        lines.append(f"- At most {most} steps.")
    if sections := steps.get("required_sections"):
        lines.append(
            f"- Every step file must have these sections, each as a `##` heading: {_listed(sections)}."
        )
    if checks := (policy.get("checks") or {}).get("required"):
        lines.append(f"- Each step must run, and pass, these checks: {_listed(checks)}.")
    if forbidden := (policy.get("paths") or {}).get("forbidden"):
        lines.append(f"- No step may change these paths: {_listed(forbidden)}.")
    return "\n".join(lines) or NONE


def _listed(values: list[Any]) -> str:
    return ", ".join(f"`{value}`" for value in values)
