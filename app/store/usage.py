"""Totals of agent runs, aggregated in SQL: one query per view, each over an index of agent_runs
(`protocol_run_id, id` for a run, `project_id, started_at` for a project's days and months).

Runs still going are left out: their usage is not known yet, so they are neither free nor unpriced.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.qa import Verdict
from app.domain.records import AgentRunStatus, Stage
from app.domain.totals import Totals, UsageGroup, totals_of
from app.store.tables import agent_runs, events

_a = agent_runs.c
_UTC_START = func.timezone(literal_column("'UTC'"), _a.started_at)  # a timestamp, as UTC reads it


def _total_columns() -> list[Any]:
    return [
        func.count().label("runs"),
        func.count().filter(_a.cost_usd.is_(None)).label("unknown_cost_runs"),
        func.coalesce(func.sum(_a.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(_a.cached_input_tokens), 0).label("cached_input_tokens"),
        func.coalesce(func.sum(_a.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(_a.reasoning_tokens), 0).label("reasoning_tokens"),
        func.sum(_a.cost_usd).label("known_cost"),
        func.coalesce(func.sum(_a.duration_ms), 0).label("duration_ms"),
    ]


def _totals(row: Any) -> Totals:
    return totals_of(
        runs=int(row.runs),
        unknown_cost_runs=int(row.unknown_cost_runs),
        input_tokens=int(row.input_tokens),
        cached_input_tokens=int(row.cached_input_tokens),
        output_tokens=int(row.output_tokens),
        reasoning_tokens=int(row.reasoning_tokens),
        known_cost=Decimal(row.known_cost) if row.known_cost is not None else None,
        duration_ms=int(row.duration_ms),
    )


_FINISHED = _a.status != AgentRunStatus.RUNNING.value


async def by_stage(conn: AsyncConnection, protocol_run_id: int) -> dict[Stage, Totals]:
    """A protocol run's finished agent runs (planning, execution, QA, ...), totalled per stage."""
    query = (
        select(_a.stage, *_total_columns())
        .where(_a.protocol_run_id == protocol_run_id, _FINISHED)
        .group_by(_a.stage)
    )
    return {Stage(row.stage): _totals(row) for row in await conn.execute(query)}


async def by_step(conn: AsyncConnection, protocol_run_id: int) -> dict[tuple[int, Stage], Totals]:
    """A protocol run's finished agent runs of its steps, totalled per (step id, stage)."""
    query = (
        select(_a.step_run_id, _a.stage, *_total_columns())
        .where(_a.protocol_run_id == protocol_run_id, _a.step_run_id.is_not(None), _FINISHED)
        .group_by(_a.step_run_id, _a.stage)
    )
    return {(int(row.step_run_id), Stage(row.stage)): _totals(row) for row in await conn.execute(query)}


def _group_column(group: UsageGroup) -> Any:
    if group is UsageGroup.DAY:
        return cast(func.date_trunc("day", _UTC_START), Date)
    if group is UsageGroup.MONTH:
        return cast(func.date_trunc("month", _UTC_START), Date)
    return _a.engine if group is UsageGroup.ENGINE else _a.model


async def for_project(
    conn: AsyncConnection,
    project_id: int,
    group: UsageGroup,
    *,
    since: date | None = None,
    until: date | None = None,
) -> list[tuple[object, Totals]]:
    """A project's finished agent runs started from `since` to `until` (UTC days, both included),
    totalled per day, month, engine or model, in key order (days and months oldest first)."""
    key = _group_column(group).label("key")
    query = select(key, *_total_columns()).where(_a.project_id == project_id, _FINISHED)
    if since is not None:
        query = query.where(_a.started_at >= _midnight(since))
    if until is not None and until < date.max:  # the last day there is bounds nothing
        query = query.where(_a.started_at < _midnight(until + timedelta(days=1)))
    query = query.group_by(key).order_by(key.asc().nulls_first())
    return [(row.key, _totals(row)) for row in await conn.execute(query)]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def qa_verdicts(conn: AsyncConnection, protocol_run_id: int) -> dict[int, tuple[int, int]]:
    """Per step of a run: how many QA verdicts passed it, out of how many it was given."""
    e = events.c
    passed = func.count().filter(e.payload["verdict"].astext == Verdict.PASS.value)
    query = (
        select(e.step_run_id, passed, func.count())
        .where(e.protocol_run_id == protocol_run_id, e.event_type == "qa.verdict", e.step_run_id.is_not(None))
        .group_by(e.step_run_id)
    )
    return {int(step): (int(ok), int(total)) for step, ok, total in await conn.execute(query)}
