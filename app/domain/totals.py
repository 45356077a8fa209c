"""Totals of agent runs: tokens, known dollars and how many runs' cost is unknown, per stage, per
protocol run, per project by day, month, engine or model.

A run whose model has no price has an unknown cost: it is counted in `unknown_cost_runs`, never added
as zero, and a total of runs that are all unpriced has no dollar figure at all (`cost_usd` None).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.domain.records import Stage


class UsageGroup(StrEnum):
    """How a project's usage is split: by calendar day or month (UTC), by engine or by model."""

    DAY = "day"
    MONTH = "month"
    ENGINE = "engine"
    MODEL = "model"


NO_MODEL = "(engine default)"  # the key of runs that named no model


class Totals(BaseModel):
    """What some agent runs used. `tokens` is input plus output (cached input is part of input,
    reasoning part of output); `cost_usd` sums the runs whose cost is known."""

    model_config = ConfigDict(frozen=True)

    runs: int = 0
    unknown_cost_runs: int = Field(0, description="Runs whose cost is unknown (no price): not in cost_usd")
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = Field(
        Decimal(0), description="Dollars of the runs whose cost is known; null when none is known"
    )
    duration_ms: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost_complete(self) -> bool:
        return self.unknown_cost_runs == 0

    def __add__(self, other: Totals) -> Totals:
        runs = self.runs + other.runs
        unknown = self.unknown_cost_runs + other.unknown_cost_runs
        known = sum((c for c in (self.cost_usd, other.cost_usd) if c is not None), Decimal(0))
        return Totals(
            runs=runs,
            unknown_cost_runs=unknown,
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=known if runs > unknown or runs == 0 else None,
            duration_ms=self.duration_ms + other.duration_ms,
        )


def totals_of(
    *,
    runs: int,
    unknown_cost_runs: int,
    input_tokens: int,
    cached_input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int,
    known_cost: Decimal | None,
    duration_ms: int,
) -> Totals:
    """Totals from one aggregated row: no dollar figure when every run's cost is unknown."""
    priced = runs - unknown_cost_runs
    return Totals(
        runs=runs,
        unknown_cost_runs=unknown_cost_runs,
        input_tokens=input_tokens,
        cached_input_tokens=cached_input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
        cost_usd=(known_cost or Decimal(0)) if priced > 0 or runs == 0 else None,
        duration_ms=duration_ms,
    )


def sum_totals(items: Iterable[Totals]) -> Totals:
    total = Totals()
    for item in items:
        total = total + item
    return total


class ProtocolUsage(BaseModel):
    """A protocol run's usage: all its agent runs together, per stage (every stage listed), and per
    step (a step's execution and QA together; a step no agent has finished on is absent)."""

    protocol_run_id: int
    total: Totals
    by_stage: dict[Stage, Totals]
    by_step: dict[int, Totals] = Field(default_factory=dict, description="Keyed by step id")


def protocol_usage(
    protocol_run_id: int,
    by_stage: dict[Stage, Totals],
    by_step_stage: dict[tuple[int, Stage], Totals] | None = None,
) -> ProtocolUsage:
    stages = {stage: by_stage.get(stage, Totals()) for stage in Stage}
    return ProtocolUsage(
        protocol_run_id=protocol_run_id,
        total=sum_totals(stages.values()),
        by_stage=stages,
        by_step=per_step(by_step_stage or {}),
    )


def per_step(by_step_stage: dict[tuple[int, Stage], Totals]) -> dict[int, Totals]:
    """Each step's stages added up (unknown cost kept apart, never counted as $0)."""
    steps: dict[int, Totals] = {}
    for (step_id, _), totals in by_step_stage.items():
        steps[step_id] = steps.get(step_id, Totals()) + totals
    return steps


class UsageRow(BaseModel):
    key: str = Field(description="The day (YYYY-MM-DD), month (YYYY-MM), engine or model")
    totals: Totals


class ProjectUsage(BaseModel):
    """A project's usage between `since` and `until` (UTC days, inclusive), split by `group`."""

    project_id: int
    group: UsageGroup
    since: date | None
    until: date | None
    rows: list[UsageRow]
    total: Totals


def group_key(group: UsageGroup, value: object) -> str:
    """The row key of a grouped value: a day or month as ISO text, a missing model named as such."""
    if group is UsageGroup.DAY and isinstance(value, date):
        return value.isoformat()
    if group is UsageGroup.MONTH and isinstance(value, date):
        return value.strftime("%Y-%m")
    return NO_MODEL if value is None else str(value)


def project_usage(
    project_id: int,
    group: UsageGroup,
    since: date | None,
    until: date | None,
    rows: list[tuple[object, Totals]],
) -> ProjectUsage:
    shaped = [UsageRow(key=group_key(group, value), totals=totals) for value, totals in rows]
    return ProjectUsage(
        project_id=project_id,
        group=group,
        since=since,
        until=until,
        rows=shaped,
        total=sum_totals(totals for _, totals in rows),
    )


def dollars(totals: Totals) -> str:
    """The cost as a person reads it: `$0.012345`, `unknown`, or the known part and what is unknown."""
    if totals.cost_usd is None:
        return "unknown"
    known = f"${totals.cost_usd:.6f}".rstrip("0").rstrip(".") if totals.cost_usd else "$0"
    if totals.cost_complete:
        return known
    runs = "run" if totals.unknown_cost_runs == 1 else "runs"
    return f"{known} + {totals.unknown_cost_runs} {runs} of unknown cost"
