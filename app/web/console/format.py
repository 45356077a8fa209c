"""Turning stored values into what a page shows: plan.md as safe HTML, agent logs as plain text, figures.

Templates autoescape everything; only `markdown` returns markup, and it comes from markdown-it with
raw HTML disabled (so `<script>` in a plan is shown as text) and its link check on (so
`javascript:` and `data:` links are not made links).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from markdown_it import MarkdownIt
from markupsafe import Markup

from app.domain.text import strip_terminal_escapes

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
MAX_LOG_CHARS = 400_000  # a page shows the tail of longer logs; the API serves them whole


def markdown(text: str) -> Markup:
    """CommonMark as HTML, with raw HTML escaped and unsafe links left as text."""
    return Markup(_MARKDOWN.render(text))  # noqa: S704 (markdown-it escapes: html disabled)


def agent_log(text: str) -> str:
    """A transcript fit to show: terminal escapes removed, long ones cut to their end (escaped later)."""
    clean = strip_terminal_escapes(text)
    if len(clean) > MAX_LOG_CHARS:
        return "[… earlier output cut …]\n" + clean[-MAX_LOG_CHARS:]
    return clean


def tokens(value: int | None) -> str:
    return "-" if not value else f"{value:,}"


def money(value: Decimal | float | None) -> str:
    return "-" if value is None or value == 0 else f"${value:,.4f}"


def duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    seconds = milliseconds / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def since(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, roughly: for "running for …" labels."""
    if moment is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def web_url(url: str | None) -> str:
    """`url` when it is an http(s) address (a PR link), else a harmless `#`: never `javascript:`."""
    return url if url and url.lower().startswith(("https://", "http://")) else "#"


FILTERS = {
    "web_url": web_url,
    "tokens": tokens,
    "money": money,
    "duration": duration,
    "when": when,
    "since": since,
}
