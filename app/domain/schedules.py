"""Cron schedules of a project: each due time of its cron expression creates one run from its template.

Times are UTC, to the minute (five fields: minute hour day-of-month month day-of-week). A pass creates
the run of the latest due time only: a service down for a day fires once when it is back, not once per
missed time. A time before the schedule was made is never due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from app.domain.records import Record
from app.errors import InvalidInputError

MAX_CRON_CHARS = 100


class Schedule(Record):
    id: int
    project_id: int
    cron: str
    title: str
    description: str
    enabled: bool
    created_at: datetime


def check_cron(expression: str) -> str:
    """The expression, trimmed, when it is five cron fields croniter understands; else a 422 naming it."""
    text = " ".join(expression.split())
    if len(text) > MAX_CRON_CHARS or len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidInputError(
            "cron must be five fields: minute hour day-of-month month day-of-week (UTC), e.g. `0 6 * * 1`",
            field="cron",
        )
    return text


def latest_due(expression: str, now: datetime, *, since: datetime) -> datetime | None:
    """The latest due time at or before `now` (to the minute), if it is not before `since`."""
    minute = now.replace(second=0, microsecond=0)
    try:
        if croniter.match(expression, minute):
            due = minute
        else:
            due = croniter(expression, minute).get_prev(datetime)
    except (CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError):
        return None
    first = since.replace(second=0, microsecond=0)
    if first < since:  # made at 06:00:30, a schedule has missed 06:00: its first due time is later
        first += timedelta(minutes=1)
    return due if due >= first else None
