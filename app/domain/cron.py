"""Intervals as cron lines: Procrastinate schedules periodic tasks by cron, to the second."""

from __future__ import annotations


def interval_cron(seconds: int) -> str:
    """The cron line of "every `seconds`": a divisor of 60 seconds, or whole minutes dividing an hour.

    Procrastinate's cron takes seconds as a sixth column. Ticks fall on the same wall-clock marks in
    every worker (which is what lets the database keep one job per tick), so an interval that does
    not divide the minute (or the hour) would tick unevenly: those are refused.
    """
    if 0 < seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    minutes, rest = divmod(seconds, 60)
    if rest == 0 and 0 < minutes <= 60 and 60 % minutes == 0:
        return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"
    raise ValueError(
        "must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) or be whole minutes dividing an hour "
        f"({', '.join(str(60 * m) for m in (2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60))})"
    )
