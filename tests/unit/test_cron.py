"""The scan interval as a cron line: evenly spaced ticks, or refused."""

from __future__ import annotations

import itertools

import croniter
import pytest

from app.config import Settings
from app.domain.cron import interval_cron


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [
        (1, "* * * * * */1"),
        (15, "* * * * * */15"),
        (30, "* * * * * */30"),
        (60, "*/1 * * * *"),
        (600, "*/10 * * * *"),
        (3600, "0 * * * *"),
    ],
)
def test_an_interval_that_divides_the_minute_or_the_hour_ticks_evenly(seconds, cron):
    assert interval_cron(seconds) == cron
    ticks = croniter.croniter(cron, 1_000_000_007).all_next(float)
    marks = [next(ticks) for _ in range(200)]
    assert {b - a for a, b in itertools.pairwise(marks)} == {seconds}


@pytest.mark.parametrize("seconds", [0, 7, 45, 90, 420, 5400])
def test_an_interval_that_would_tick_unevenly_is_refused(seconds):
    with pytest.raises(ValueError, match="must divide 60"):
        interval_cron(seconds)
    with pytest.raises(ValueError, match="scheduler_interval_seconds"):
        Settings(scheduler_interval_seconds=seconds)
