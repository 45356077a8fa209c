"""What agents are told of the run's policy: the planner, the sections, step count, checks and paths
that the findings (app/domain/findings.py) will hold its plan and steps to; the executing agent, the
checks to run, the paths to leave alone and the commit convention; the QA agent, how strictly to judge
(`qa.strictness`) and the checks it must see pass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NONE = "(none: this project's policy requires nothing of the plan)"
NOTHING_MORE = "(none: this project's policy asks nothing more of this step)"

# What each `qa.strictness` tells the QA agent. Whatever it says, an "error" finding fails the step
# (app.domain.qa.read_verdict): the levels differ in what counts as an error.
STRICTNESS_RULES = {
    "lenient": (
        "Fail the step only when its goal is not reached, a required check fails, it added a secret or "
        "credential, or it changed a path the policy forbids: those are errors. Report anything else "
        "(an unfinished sub-task that does not stop the goal, style, missing tests, an unrelated change) "
        "as a warning or info finding, and pass."
    ),
    "normal": (
        "Fail the step when its goal is not reached, a sub-task is not done, a check fails, it changed "
        "something unrelated, or it added a secret: those are errors. Style, naming and nice-to-haves "
        "are warnings and do not fail it."
    ),
    "strict": (
        "Pass only when nothing is in doubt: the goal and every sub-task and acceptance criterion are met "
        "and you verified each one, every check passes, the change is covered by tests, nothing unrelated "
        "changed and no TODO, placeholder or disabled test was left. Anything short of that, or anything "
        "you could not verify, is an error."
    ),
}


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
    if checks := _checks(policy):
        lines.append(f"- Each step must run, and pass, these checks: {_listed(checks)}.")
    if forbidden := _forbidden(policy):
        lines.append(f"- No step may change these paths: {_listed(forbidden)}.")
    return "\n".join(lines) or NONE


def execution_requirements(policy: Mapping[str, Any]) -> str:
    """Markdown bullets for the agent executing a step; NOTHING_MORE when the policy asks nothing."""
    lines = []
    if checks := _checks(policy):
        lines.append(f"- Run each of these checks and make it pass before you finish: {_listed(checks)}.")
    if forbidden := _forbidden(policy):
        lines.append(f"- Do not change these paths: {_listed(forbidden)}.")
    if convention := (policy.get("git") or {}).get("commit_convention"):
        lines.append(
            f"- The project's commit convention is `{convention}`. You do not commit (the orchestrator "
            "commits your work as `feat: <step title> [protocol-NNNN/NN]`), but follow the convention in "
            "whatever you write that describes your change, such as your entry in `log.md`."
        )
    return "\n".join(lines) or NOTHING_MORE


def qa_requirements(policy: Mapping[str, Any]) -> str:
    """Markdown bullets for the QA agent: the strictness it judges by, then the checks it must see pass
    and the paths no step may change."""
    strictness = (policy.get("qa") or {}).get("strictness")
    if strictness not in STRICTNESS_RULES:
        strictness = "normal"
    lines = [f"- Strictness {strictness}: {STRICTNESS_RULES[strictness]}"]
    if checks := _checks(policy):
        lines.append(
            f"- Run each of these required checks yourself: {_listed(checks)}. One that fails, or that "
            "you cannot run, is an error."
        )
    if forbidden := _forbidden(policy):
        lines.append(f"- A change to any of these paths is an error: {_listed(forbidden)}.")
    return "\n".join(lines)


def _checks(policy: Mapping[str, Any]) -> list[Any]:
    return list((policy.get("checks") or {}).get("required") or [])


def _forbidden(policy: Mapping[str, Any]) -> list[Any]:
    return list((policy.get("paths") or {}).get("forbidden") or [])


def _listed(values: list[Any]) -> str:
    return ", ".join(f"`{value}`" for value in values)
