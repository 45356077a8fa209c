"""What the console draws: usage, step and queue figures turned into chart series (app/domain/charts.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from app.domain.charts import Chart, Kind, Point
from app.domain.records import Stage, StepRun
from app.domain.totals import ProjectUsage, Totals, dollars

MAX_DAYS = 366  # a daily chart spans at most a year of days, gaps filled with zeros


def _runs(totals: Totals) -> str:
    return f"{totals.runs} run" + ("" if totals.runs == 1 else "s")


def _days(usage: ProjectUsage) -> list[tuple[str, Totals]]:
    """Every day from the first to the last (of the range asked, or of the rows), empty ones as zeros."""
    found = {row.key: row.totals for row in usage.rows}
    keys = sorted(found)
    if not keys:
        return []
    first = usage.since or date.fromisoformat(keys[0])
    last = usage.until or date.fromisoformat(keys[-1])
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    span = (last - first).days + 1
    days = [(first + timedelta(days=i)).isoformat() for i in range(max(span, 0))]
    return [(day, found.get(day, Totals())) for day in days]


def daily_cost(usage: ProjectUsage) -> Chart:
    """Known dollars per day; a day's hover says how many of its runs had an unknown cost."""
    points = tuple(
        Point(day[5:], float(t.cost_usd or 0), f"{day}: {dollars(t)} ({_runs(t)})") for day, t in _days(usage)
    )
    return Chart("Cost per day (known prices)", "US dollars", points, x_label="day")


def daily_tokens(usage: ProjectUsage) -> Chart:
    points = tuple(
        Point(day[5:], float(t.tokens), f"{day}: {t.tokens} tokens ({_runs(t)})") for day, t in _days(usage)
    )
    return Chart("Tokens per day (input + output)", "tokens", points, x_label="day")


def step_durations(plan: Sequence[StepRun], by_step: dict[tuple[int, Stage], Totals]) -> Chart:
    """Seconds of agent work per step: its executions and its QA passes together."""
    points = []
    for step in plan:
        work = by_step.get((step.id, Stage.EXECUTION), Totals())
        qa = by_step.get((step.id, Stage.QA), Totals())
        seconds = (work.duration_ms + qa.duration_ms) / 1000
        hover = (
            f"step {step.step_index} {step.name}: {seconds:.1f} s"
            f" ({work.duration_ms / 1000:.1f} s execution, {qa.duration_ms / 1000:.1f} s QA)"
        )
        points.append(Point(f"{step.step_index:02d}", seconds, hover))
    return Chart("Agent time per step", "seconds", tuple(points), Kind.BAR, "step")


def qa_pass_rate(plan: Sequence[StepRun], verdicts: dict[int, tuple[int, int]]) -> Chart:
    """Per step, the share of its QA verdicts that passed (steps QA never judged are left out)."""
    points = []
    for step in plan:
        passed, total = verdicts.get(step.id, (0, 0))
        if total:
            rate = 100 * passed / total
            hover = f"step {step.step_index} {step.name}: {passed} of {total} verdicts passed ({rate:.0f}%)"
            points.append(Point(f"{step.step_index:02d}", rate, hover))
    return Chart("QA pass rate per step", "% passed", tuple(points), Kind.BAR, "step")


def run_pass_rate(verdicts: dict[int, tuple[int, int]]) -> str:
    """The run's QA pass rate in words: `3 of 4 verdicts passed (75%)`, or that there was none."""
    passed = sum(ok for ok, _ in verdicts.values())
    total = sum(count for _, count in verdicts.values())
    if not total:
        return "no QA verdict yet"
    return f"{passed} of {total} verdicts passed ({100 * passed / total:.0f}%)"


def queue_depth(waiting: Sequence[tuple[str, int, float]]) -> Chart:
    """Jobs due and not yet taken, per queue, now; each with how long its oldest has waited."""
    points = tuple(
        Point(queue, float(count), f"{queue}: {count} waiting, the oldest for {oldest:.0f} s")
        for queue, count, oldest in waiting
    )
    return Chart("Jobs waiting per queue now", "jobs", points, Kind.BAR, "queue")
