"""Planning output: the strict JSON an agent must return, and the guardrails a plan must pass.

The agent never writes the protocol folder itself: it returns `plan_md`, `context_md`, `log_md` and
`step_files[{filename, content}]`; code checks all of it and only then writes, all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.domain.protocol_files import STEP_FILE
from app.errors import PlanRejectedError

MAX_STEPS = 40
MAX_FILE_BYTES = 64 * 1024
MAX_PLAN_BYTES = 512 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADING = re.compile(r"^#{1,3}\s+(?P<title>\S.*?)\s*#*\s*$", re.MULTILINE)

_FILE_ITEM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["filename", "content"],
    "properties": {
        "filename": {"type": "string", "description": "NN-short-slug.md, numbered from 01"},
        "content": {"type": "string", "description": "The step file in Markdown"},
    },
}

# Strict: every property required, nothing else allowed (what `--output-schema` engines enforce).
PLAN_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["plan_md", "context_md", "log_md", "step_files"],
    "properties": {
        "plan_md": {"type": "string"},
        "context_md": {"type": "string"},
        "log_md": {"type": "string"},
        "step_files": {"type": "array", "items": _FILE_ITEM},
    },
}


class _StepFileOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    filename: str
    content: str


class _PlanOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    plan_md: str
    context_md: str
    log_md: str
    step_files: list[_StepFileOutput]


class PlannedStep(BaseModel):
    model_config = ConfigDict(frozen=True)
    index: int
    filename: str
    title: str
    content: str


class AcceptedPlan(BaseModel):
    """A plan that passed every guardrail: safe to write."""

    model_config = ConfigDict(frozen=True)
    plan_md: str
    context_md: str
    log_md: str
    steps: tuple[PlannedStep, ...]


def accept_plan(output: Any, *, secrets_in_it: Sequence[str] = ()) -> AcceptedPlan:
    """Check an agent's planning output; PlanRejectedError lists every problem found.

    `secrets_in_it`: the names of the known secrets the output held (it arrives redacted). Such a
    plan is refused: committed, it would be pushed and kept in the branch's history.
    """
    leaks = [
        f"the plan contains the value of {name}, a known secret: refused rather than committed"
        for name in secrets_in_it
    ]
    if leaks:
        raise PlanRejectedError("plan rejected: " + "; ".join(leaks), problems=leaks)
    try:
        parsed = _PlanOutput.model_validate(output)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'plan'}: {e['msg']}" for e in exc.errors()]
        raise PlanRejectedError("plan rejected: " + "; ".join(problems[:10]), problems=problems) from None
    problems = _text_problems(parsed) + _step_problems(parsed.step_files)
    if problems:
        raise PlanRejectedError("plan rejected: " + "; ".join(problems[:10]), problems=problems)
    steps = tuple(
        PlannedStep(
            index=int(step.filename[:2]),
            filename=step.filename,
            title=step_title(step.content, step.filename),
            content=step.content,
        )
        for step in parsed.step_files
    )
    return AcceptedPlan(
        plan_md=parsed.plan_md, context_md=parsed.context_md, log_md=parsed.log_md, steps=steps
    )


def _text_problems(plan: _PlanOutput) -> list[str]:
    texts = {"plan_md": plan.plan_md, "context_md": plan.context_md, "log_md": plan.log_md}
    texts |= {f"step_files[{i}]": step.content for i, step in enumerate(plan.step_files)}
    problems = []
    for name, text in texts.items():
        if not text.strip():
            problems.append(f"{name} is empty")
        elif len(text.encode("utf-8")) > MAX_FILE_BYTES:
            problems.append(f"{name} is larger than {MAX_FILE_BYTES // 1024} KiB")
        elif _CONTROL.search(text):
            problems.append(f"{name} contains control characters")
    if sum(len(t.encode("utf-8")) for t in texts.values()) > MAX_PLAN_BYTES:
        problems.append(f"the plan is larger than {MAX_PLAN_BYTES // 1024} KiB in all")
    if not _HEADING.search(plan.plan_md):
        problems.append("plan_md has no heading")
    return problems


def _step_problems(step_files: list[_StepFileOutput]) -> list[str]:
    if not step_files:
        return ["the plan has no steps"]
    if len(step_files) > MAX_STEPS:
        return [f"the plan has {len(step_files)} steps; at most {MAX_STEPS}"]
    problems = []
    for position, step in enumerate(step_files, start=1):
        if not STEP_FILE.fullmatch(step.filename):
            problems.append(f"step file name {step.filename[:80]!r} is not NN-short-slug.md")
        elif int(step.filename[:2]) != position:
            problems.append(f"step file {step.filename!r} should be numbered {position:02d}")
        if not _HEADING.search(step.content):
            problems.append(f"step file {step.filename[:80]!r} has no heading")
    return problems


def step_title(content: str, filename: str) -> str:
    """The step's first heading, or its file name made readable."""
    match = _HEADING.search(content)
    if match:
        return match["title"][:200]
    slug = filename.removesuffix(".md")[3:]
    return slug.replace("-", " ").capitalize() or filename
