"""Offline evaluation: a suite of sample tasks run across prompt/model/engine variants, and its tally.

A suite is a folder holding `suite.yaml` (or `suite.yml`, `suite.json`):

    tasks:
      - name: add-function            # lower-case letters, digits and dashes
        repo: fixtures/calc           # a folder of the suite: its files are the task's first commit
        task: Add a function ...      # what the agent is asked (its step file)
        check: [python3, -m, unittest] # run in the result worktree: exit 0 means the task passed
        timeout_seconds: 60           # the checker's deadline (default 60)
    variants:
      - name: codex
        engine: codex                 # codex | claude | command
        model: gpt-5.1-codex          # optional: the engine's own default when absent
        prompt: prompts/terse.md      # optional: a template of the suite instead of the shipped one

Each task runs as the one step of a protocol, so the shipped execution prompt works unchanged; an
alternative template gets the same `$placeholders` (and `$task`). Pure: parsing, prompt values, tally.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.domain.policy_prompt import NOTHING_MORE
from app.domain.selection import EngineName
from app.errors import InvalidInputError

SUITE_FILES = ("suite.yaml", "suite.yml", "suite.json")
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
PROTOCOL_NUMBER = "0001"
Named = TypeVar("Named", "EvalTask", "EvalVariant")


def _suite_path(value: str) -> str:
    """A path inside the suite folder: relative, without `..`."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError("must be a relative path inside the suite folder, without '..'")
    return value


class EvalTask(BaseModel):
    """One sample task: a fixture repository, an instruction, and a checker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    repo: str
    task: str = Field(min_length=1, max_length=20_000)
    check: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(60, gt=0, le=3600)

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        return _suite_path(value)

    @field_validator("check")
    @classmethod
    def _arguments(cls, value: list[str]) -> list[str]:
        if not value[0] or any("\0" in arg for arg in value):
            raise ValueError("must be an argument list whose first item names a program")
        return value


class EvalVariant(BaseModel):
    """One way of running the tasks: an engine, a model, a prompt template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    engine: EngineName
    model: str | None = Field(None, min_length=1)
    prompt: str | None = None  # a template in the suite folder; None: app/prompts/execution.md

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return None if value is None else _suite_path(value)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[EvalTask] = Field(min_length=1)
    variants: list[EvalVariant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        for kind, names in (
            ("tasks", [t.name for t in self.tasks]),
            ("variants", [v.name for v in self.variants]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"two {kind} share a name")
        return self

    def selected(self, variants: Sequence[str], tasks: Sequence[str]) -> Suite:
        """Only the named variants and tasks (all when none is named); an unknown name is refused."""
        return self.model_copy(
            update={
                "variants": _pick(self.variants, variants, "variant"),
                "tasks": _pick(self.tasks, tasks, "task"),
            }
        )


def _pick(items: list[Named], names: Sequence[str], field: str) -> list[Named]:
    known = [item.name for item in items]
    if unknown := [name for name in names if name not in known]:
        raise InvalidInputError(
            f"no {field} named {', '.join(unknown)} in the suite (it has {', '.join(known)})", field=field
        )
    return [item for item in items if not names or item.name in names]


def parse_suite(file_name: str, text: str) -> Suite:
    """The suite in `text` (YAML, or JSON for a .json file); InvalidInputError saying what is wrong."""
    try:
        data = json.loads(text) if file_name.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise InvalidInputError(
            f"{file_name} is not valid {_format(file_name)}: {error}", field="suite"
        ) from None
    try:
        return Suite.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'suite'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise InvalidInputError(f"{file_name}: {problems}", field="suite") from None


def _format(file_name: str) -> str:
    return "JSON" if file_name.endswith(".json") else "YAML"


def protocol_name(task: EvalTask) -> str:
    return f"{PROTOCOL_NUMBER}-{task.name}"


def step_file(task: EvalTask) -> str:
    return f"01-{task.name}.md"


def protocol_files(task: EvalTask) -> dict[str, str]:
    """The files of the task's one-step protocol, by path in the repository: what a planned run has."""
    folder = f".protocols/{protocol_name(task)}"
    return {
        f"{folder}/plan.md": f"# Plan: {task.name}\n\n1. {step_file(task)}: the whole task.\n",
        f"{folder}/context.md": "# Context\n\nAn evaluation task on a small fixture repository.\n",
        f"{folder}/log.md": "# Log\n",
        f"{folder}/{step_file(task)}": f"# {task.name}\n\n## Goal\n{task.task.strip()}\n",
    }


def prompt_values(task: EvalTask) -> dict[str, str]:
    """What the execution template's placeholders are filled with (plus `$task` for a suite's own)."""
    return {
        "branch_name": "main",
        "protocol_name": protocol_name(task),
        "step_file": step_file(task),
        "step_number": "01",
        "step_title": task.name,
        "policy_requirements": NOTHING_MORE,
        "extra_instructions": "",
        "task": task.task.strip(),
    }


class EvalRun(BaseModel):
    """One task run by one variant once: whether its checker passed, and what it cost."""

    variant: str
    task: str
    repeat: int
    passed: bool
    agent_status: str
    prompt_version: str  # `execution@3f2a9c1b0d4e`: the exact words the agent was given
    tokens: int  # as the engine reported them (usage.total_tokens)
    cost_usd: Decimal | None  # None: unknown (the engine did not say and no price is configured)
    duration_ms: int  # the agent's and the checker's time
    check_exit_code: int | None = None  # None: the checker did not run or was killed at its deadline
    error: str | None = None


class VariantSummary(BaseModel):
    variant: str
    runs: int
    passed: int
    pass_rate: float
    total_tokens: int
    mean_tokens: float
    cost_usd: Decimal | None  # None as soon as one run's cost is unknown: never a partial sum
    total_ms: int
    mean_ms: float


def summarise(runs: Iterable[EvalRun], variants: Sequence[str]) -> list[VariantSummary]:
    """One line per variant (in `variants` order) over its runs."""
    found = list(runs)
    summaries = []
    for name in variants:
        mine = [run for run in found if run.variant == name]
        count = len(mine) or 1  # a variant with no run shows zeros, never a division by zero
        tokens = sum(run.tokens for run in mine)
        costs = [run.cost_usd for run in mine if run.cost_usd is not None]
        total_ms = sum(run.duration_ms for run in mine)
        summaries.append(
            VariantSummary(
                variant=name,
                runs=len(mine),
                passed=sum(run.passed for run in mine),
                pass_rate=sum(run.passed for run in mine) / count,
                total_tokens=tokens,
                mean_tokens=tokens / count,
                cost_usd=sum(costs, Decimal(0)) if mine and len(costs) == len(mine) else None,
                total_ms=total_ms,
                mean_ms=total_ms / count,
            )
        )
    return summaries


def report(runs: Sequence[EvalRun], summaries: Sequence[VariantSummary]) -> dict[str, Any]:
    """The JSON report: every run, and every variant's tally (costs as strings, null when unknown)."""
    return {
        "variants": [summary.model_dump(mode="json") for summary in summaries],
        "runs": [run.model_dump(mode="json") for run in runs],
    }


def cost_text(cost: Decimal | None) -> str:
    return "unknown" if cost is None else f"${cost:.4f}"


def summary_rows(summaries: Sequence[VariantSummary]) -> tuple[list[str], list[list[str]]]:
    """The table's headers and rows."""
    headers = ["variant", "runs", "passed", "pass rate", "mean tokens", "total tokens", "cost", "mean time"]
    rows = [
        [
            s.variant,
            str(s.runs),
            str(s.passed),
            f"{s.pass_rate:.0%}",
            f"{s.mean_tokens:.0f}",
            str(s.total_tokens),
            cost_text(s.cost_usd),
            f"{s.mean_ms / 1000:.1f}s",
        ]
        for s in summaries
    ]
    return headers, rows
