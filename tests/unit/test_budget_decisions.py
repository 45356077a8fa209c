"""A budget refuses what it cannot cover; the estimate is the stage's mean, or the floors; months in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.domain.budgets import Headroom, Spend, Standing, expected_spend, headroom, month_key, month_start
from app.domain.usage import Ceiling

CEILING = Ceiling("step", 100, "setting X")


@pytest.mark.parametrize(
    ("raised", "used", "expected", "refuses"),
    [
        (0, 0, 100, False),  # exactly covered
        (0, 0, 101, True),
        (0, 100, 0, True),  # spent, whatever is expected
        (0, 99, 0, False),
        (50, 100, 50, False),  # the raise lifts the limit to 150
        (50, 100, 51, True),
    ],
)
def test_a_budget_refuses_what_its_remainder_cannot_cover(raised, used, expected, refuses):
    assert Standing(CEILING, raised, used, expected).refuses is refuses


def test_the_estimate_is_the_mean_of_recent_runs_or_the_floors():
    floors = {"floor_tokens": 1000, "floor_usd": Decimal("0.5")}
    assert expected_spend([], unpriced_per_1k=None, **floors) == (1000.0, Decimal("0.5"))
    recent = [Spend(tokens=100, cost_usd=Decimal("0.2")), Spend(tokens=300, unpriced_tokens=300)]
    assert expected_spend(recent, unpriced_per_1k=None, **floors) == (200.0, Decimal("0.1"))
    # Unpriced tokens count at the fallback price: 300 at $1 per 1k.
    assert expected_spend(recent, unpriced_per_1k=Decimal(1), **floors) == (200.0, Decimal("0.25"))


def test_the_month_begins_at_midnight_utc_on_the_first():
    late = datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # January, in UTC
    assert month_start(late) == datetime(2027, 1, 1, tzinfo=UTC)
    assert month_key(late) == "2027-01"


def test_the_headroom_is_what_the_tightest_budget_of_each_unit_has_left():
    standings = [
        Standing(Ceiling("step", 100, "a"), 0, 30, 10),
        Standing(Ceiling("protocol", 1000, "b"), 0, 950, 10),
        Standing(Ceiling("project", 2.5, "c"), 0, 1.25, 0),
    ]
    assert headroom(standings) == Headroom(usd=Decimal("1.250000"), tokens=50)
    assert headroom([]) == Headroom()
