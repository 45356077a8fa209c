"""How the commands print one event: a multi-line message (git's errors) reads as lines."""

from __future__ import annotations

from datetime import UTC, datetime

from app.cli.progress import event_line
from app.domain.records import Event


def _event(message: str) -> Event:
    return Event(
        id=1,
        project_id=1,
        protocol_run_id=None,
        step_run_id=None,
        event_type="project.setup_failed",
        message=message,
        payload={},
        correlation_id=None,
        created_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    )


def test_a_multi_line_message_goes_on_in_indented_lines_with_controls_still_escaped():
    text = "git fetch failed:\nfatal: repository not found\r\n\x1b[31mred\x1b[0m\tend\n"
    lines = event_line(_event(text)).split("\n")
    assert len(lines) == 3
    assert lines[0].endswith("project.setup_failed   git fetch failed:")
    indent = len(lines[0]) - len("git fetch failed:")
    assert lines[1] == " " * indent + "fatal: repository not found"
    assert lines[2] == " " * indent + "\\x1b[31mred\\x1b[0m\tend"
    assert "\\x0a" not in event_line(_event(text))


def test_a_one_line_message_stays_one_line():
    assert "\n" not in event_line(_event("setup started"))
