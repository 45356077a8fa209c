"""Usage totals: unknown costs counted apart (never as $0), sums, row keys, and how a cost reads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.domain.records import Stage
from app.domain.totals import (
    NO_MODEL,
    Totals,
    UsageGroup,
    dollars,
    group_key,
    protocol_usage,
    sum_totals,
    totals_of,
)


def _row(runs: int, unknown: int, cost: str | None) -> Totals:
    return totals_of(
        runs=runs,
        unknown_cost_runs=unknown,
        input_tokens=100 * runs,
        cached_input_tokens=0,
        output_tokens=10 * runs,
        reasoning_tokens=0,
        known_cost=Decimal(cost) if cost is not None else None,
        duration_ms=1000 * runs,
    )


@pytest.mark.parametrize(
    ("parts", "cost", "unknown", "shown"),
    [
        ([], Decimal(0), 0, "$0"),
        ([_row(2, 0, "1.5")], Decimal("1.5"), 0, "$1.5"),
        ([_row(1, 1, None)], None, 1, "unknown"),
        ([_row(1, 1, None), _row(2, 2, None)], None, 3, "unknown"),
        ([_row(1, 1, None), _row(1, 0, "0.25")], Decimal("0.25"), 1, "$0.25 + 1 run of unknown cost"),
        ([_row(3, 2, "0.000001")], Decimal("0.000001"), 2, "$0.000001 + 2 runs of unknown cost"),
        ([_row(1, 0, "0")], Decimal(0), 0, "$0"),
    ],
)
def test_unknown_costs_are_counted_apart_never_as_zero(parts, cost, unknown, shown) -> None:
    total = sum_totals(parts)
    assert total.cost_usd == cost
    assert total.unknown_cost_runs == unknown
    assert total.runs == sum(p.runs for p in parts)
    assert total.tokens == 110 * total.runs
    assert dollars(total) == shown


def test_a_protocols_usage_lists_every_stage_and_their_sum() -> None:
    usage = protocol_usage(7, {Stage.PLANNING: _row(1, 0, "0.5"), Stage.QA: _row(2, 2, None)})
    assert list(usage.by_stage) == list(Stage)
    assert usage.by_stage[Stage.EXECUTION] == Totals()
    assert (usage.total.runs, usage.total.unknown_cost_runs, usage.total.cost_usd) == (3, 2, Decimal("0.5"))
    assert usage.model_dump(mode="json")["total"]["tokens"] == 330


@pytest.mark.parametrize(
    ("group", "value", "key"),
    [
        (UsageGroup.DAY, date(2026, 3, 9), "2026-03-09"),
        (UsageGroup.MONTH, date(2026, 3, 1), "2026-03"),
        (UsageGroup.ENGINE, "codex", "codex"),
        (UsageGroup.MODEL, None, NO_MODEL),
        (UsageGroup.MODEL, "gpt-5.1", "gpt-5.1"),
    ],
)
def test_row_keys(group, value, key) -> None:
    assert group_key(group, value) == key
