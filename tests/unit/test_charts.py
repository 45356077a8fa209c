"""Server-drawn SVG charts: one `.point` per value with its hover title, axes labelled, every text
escaped, and the series the console draws (days filled, steps in plan order)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

from app.domain.charts import Chart, Kind, Point, number, render_svg
from app.domain.records import Stage, StepRun
from app.domain.totals import Totals, UsageGroup, project_usage
from app.domain.usage_charts import daily_cost, qa_pass_rate, queue_depth, run_pass_rate, step_durations

SVG = "{http://www.w3.org/2000/svg}"


def _parse(chart: Chart) -> ET.Element:
    return ET.fromstring(render_svg(chart))


def _points(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == "point"]


def test_each_point_is_drawn_with_its_title_and_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    chart = Chart(hostile, "y <unit>", (Point("a<b", 1, hostile), Point("c", 3, "three")), Kind.BAR)
    text = render_svg(chart)
    assert "<script>" not in text
    root = _parse(chart)
    points = _points(root)
    assert [p.tag for p in points] == [SVG + "rect"] * 2
    assert [p.find(SVG + "title").text for p in points] == [hostile, "three"]
    assert root.find(SVG + "title").text == hostile
    assert root.get("role") == "img"
    assert root.get("aria-label").startswith(hostile + ": 2 points from a<b to c; highest three")
    labels = {e.get("class"): e.text for e in root.iter(SVG + "text") if e.get("class")}
    assert labels["y-max"] == "3"
    assert labels["y-label"] == "y <unit>"
    # The tallest bar reaches the top, the other is a third of it.
    heights = [float(p.get("height")) for p in points]
    assert abs(heights[1] - 3 * heights[0]) < 0.5


def test_a_line_chart_has_a_path_and_an_empty_chart_still_draws() -> None:
    line = _parse(Chart("t", "y", tuple(Point(str(i), i, f"p{i}") for i in range(20))))
    assert len(_points(line)) == 20
    assert line.find(SVG + "polyline") is not None
    x_labels = [e for e in line.iter(SVG + "text") if e.get("class") == "x-label"]
    assert 2 <= len(x_labels) <= 9, "x labels thinned out, the last kept"
    assert x_labels[-1].text == "19"
    empty = _parse(Chart("nothing", "y", ()))
    assert _points(empty) == []
    assert empty.get("aria-label") == "nothing: no data"


def test_numbers_are_short() -> None:
    assert [number(v) for v in (0, 0.25, 999, 1500, 2_000_000, 3e9)] == [
        "0",
        "0.25",
        "999",
        "1.5k",
        "2M",
        "3G",
    ]


def _totals(runs: int, unknown: int, cost: str) -> Totals:
    return Totals(runs=runs, unknown_cost_runs=unknown, input_tokens=10, cost_usd=Decimal(cost))


def test_days_without_runs_are_zeros_between_the_range_ends() -> None:
    rows = [(date(2026, 3, 2), _totals(1, 0, "0.5")), (date(2026, 3, 4), _totals(2, 1, "1"))]
    usage = project_usage(1, UsageGroup.DAY, date(2026, 3, 1), date(2026, 3, 5), rows)
    chart = daily_cost(usage)
    assert [p.label for p in chart.points] == ["03-01", "03-02", "03-03", "03-04", "03-05"]
    assert [p.value for p in chart.points] == [0, 0.5, 0, 1, 0]
    assert chart.points[3].hover == "2026-03-04: $1 + 1 run of unknown cost (2 runs)"
    assert daily_cost(project_usage(1, UsageGroup.DAY, None, None, [])).points == ()


def _step(step_id: int, index: int) -> StepRun:
    return StepRun.model_construct(id=step_id, step_index=index, name=f"s{index}")


def test_step_durations_and_qa_pass_rates_follow_the_plan() -> None:
    plan = [_step(10, 1), _step(11, 2), _step(12, 3)]
    by_step = {
        (10, Stage.EXECUTION): Totals(duration_ms=4000),
        (10, Stage.QA): Totals(duration_ms=500),
        (12, Stage.EXECUTION): Totals(duration_ms=1000),
    }
    durations = step_durations(plan, by_step)
    assert [(p.label, p.value) for p in durations.points] == [("01", 4.5), ("02", 0), ("03", 1)]
    verdicts = {10: (1, 2), 12: (1, 1)}
    rates = qa_pass_rate(plan, verdicts)
    assert [(p.label, p.value) for p in rates.points] == [("01", 50), ("03", 100)]
    assert run_pass_rate(verdicts) == "2 of 3 verdicts passed (67%)"
    assert run_pass_rate({}) == "no QA verdict yet"
    queues = queue_depth([("default", 3, 12.4), ("host:a", 0, 0)])
    assert [p.hover for p in queues.points] == [
        "default: 3 waiting, the oldest for 12 s",
        "host:a: 0 waiting, the oldest for 0 s",
    ]
