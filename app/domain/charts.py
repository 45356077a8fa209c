"""Charts as SVG text, drawn on the server: no script, no library, nothing fetched by the browser.

A chart is a series of points, each with its x label, its value and the sentence a person hovering
it reads (its `<title>`). Every text that reaches the SVG is escaped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40  # room for the axes' labels
MAX_X_LABELS = 8
MAX_BAR_WIDTH = 48  # a few bars stay bars, not blocks


class Kind(StrEnum):
    LINE = "line"
    BAR = "bar"


@dataclass(frozen=True)
class Point:
    label: str  # on the x axis
    value: float
    hover: str  # what the point says of itself


@dataclass(frozen=True)
class Chart:
    title: str
    y_label: str
    points: tuple[Point, ...]
    kind: Kind = Kind.LINE
    x_label: str = "item"  # what a point is (a day, a step): the heading of its column in a table

    @property
    def summary(self) -> str:
        """One sentence for a screen reader: what is drawn, and its range."""
        if not self.points:
            return f"{self.title}: no data"
        top = max(self.points, key=lambda p: p.value)
        return (
            f"{self.title}: {len(self.points)} points from {self.points[0].label} to"
            f" {self.points[-1].label}; highest {top.hover}"
        )


def number(value: float) -> str:
    """A short axis number: 1.5k, 2M, 0.25."""
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.3g}{suffix}"
    return f"{value:.3g}"


def render_svg(chart: Chart) -> str:
    """The chart as an `<svg>` element: axes, the y maximum, x labels, one `.point` per point."""
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    top = max((p.value for p in chart.points), default=0.0) or 1.0
    count = len(chart.points)
    step = (x1 - x0) / max(count, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{chart.kind}" role="img"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' aria-label="{escape(chart.summary)}">',
        f"<title>{escape(chart.title)}</title>",
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="currentColor"/>',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="currentColor"/>',
        f'<text class="y-max" x="{x0 - 6}" y="{y1 + 4}" text-anchor="end" font-size="11">'
        f"{escape(number(top))}</text>",
        f'<text x="{x0 - 6}" y="{y0}" text-anchor="end" font-size="11">0</text>',
        f'<text class="y-label" x="12" y="{(y0 + y1) / 2:.1f}" font-size="11" text-anchor="middle"'
        f' transform="rotate(-90 12 {(y0 + y1) / 2:.1f})">{escape(chart.y_label)}</text>',
    ]
    every = max(1, -(-count // MAX_X_LABELS))  # ceiling division: at most MAX_X_LABELS labels
    coords = []
    for i, point in enumerate(chart.points):
        x = x0 + step * (i + 0.5)
        y = y0 - (y0 - y1) * max(point.value, 0.0) / top
        coords.append((x, y))
        if (count - 1 - i) % every == 0:  # counted from the last point, which is always labelled
            parts.append(
                f'<text class="x-label" x="{x:.1f}" y="{y0 + 16}" text-anchor="middle" font-size="11">'
                f"{escape(point.label)}</text>"
            )
    if chart.kind is Kind.LINE and count > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="currentColor" stroke-width="2"/>')
    for (x, y), point in zip(coords, chart.points, strict=True):
        hover = f"<title>{escape(point.hover)}</title>"
        if chart.kind is Kind.BAR:
            width = min(max(step * 0.7, 1.0), MAX_BAR_WIDTH)
            parts.append(
                f'<rect class="point" x="{x - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}"'
                f' height="{y0 - y:.1f}" fill="currentColor" opacity="0.7">{hover}</rect>'
            )
        else:
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="currentColor">{hover}</circle>'
            )
    parts.append("</svg>")
    return "".join(parts)
