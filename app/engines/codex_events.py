"""What `codex exec --json` printed, read as events: final answer, commands, file changes, usage, failure.

Event shapes are those of codex-rs/exec/src/exec_events.rs (codex-cli 0.169.0). One JSON object a line:
`thread.started`, `turn.started`, `turn.completed` (with `usage`), `turn.failed` (with `error`),
`item.started` / `item.updated` / `item.completed` (with an `item`), and `error`. Facts that matter:
- `turn.completed.usage` holds the thread's running totals, so a resumed thread repeats earlier
  turns: each turn counts for its difference from the one before.
- A top-level `error` is often only a retry notice ("Reconnecting…"); the failure is `turn.failed`.
- An item of type `error` is a warning (e.g. "Model metadata … not found"), never a failure.
Anything that is not a JSON object is ignored here (it stays in the transcript).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.domain.usage import TokenUsage


@dataclass(frozen=True)
class CodexSummary:
    """The outcome of one `codex exec` as its event stream tells it."""

    thread_id: str | None = None
    final_message: str | None = None
    commands: tuple[str, ...] = ()
    commands_passed: tuple[str, ...] = ()  # completed with exit code 0
    files_changed: tuple[str, ...] = ()  # as codex printed them: usually absolute paths
    usage: TokenUsage = field(default_factory=TokenUsage)
    turns_completed: int = 0
    failure: str | None = None  # why the last turn failed
    stream_errors: tuple[str, ...] = ()  # top-level `error` events
    warnings: tuple[str, ...] = ()  # `error` items


@dataclass
class CodexEventParser:
    """Folds `codex exec --json` lines, one at a time, into a `CodexSummary`."""

    thread_id: str | None = None
    final_message: str | None = None
    commands: dict[str, str] = field(default_factory=dict)  # item id -> command, in order of appearance
    passed: dict[str, str] = field(default_factory=dict)  # the same, of those that exited 0
    files_changed: dict[str, None] = field(default_factory=dict)  # an ordered set
    usage: TokenUsage = field(default_factory=TokenUsage)
    last_total: TokenUsage = field(default_factory=TokenUsage)
    turns_completed: int = 0
    failure: str | None = None
    stream_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        """Take one stdout line; lines that are not JSON events are skipped."""
        event = _json_object(line)
        if event is None:
            return
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = _text(event.get("thread_id")) or self.thread_id
        elif kind == "turn.completed":
            self._turn_completed(event.get("usage"))
        elif kind == "turn.failed":
            error = event.get("error")
            self.failure = error_text(error.get("message") if isinstance(error, dict) else error)
        elif kind == "error":
            self.stream_errors.append(error_text(event.get("message")))
        elif kind in ("item.started", "item.updated", "item.completed"):
            item = event.get("item")
            if isinstance(item, dict):
                self._item(item, completed=kind == "item.completed")

    def summary(self) -> CodexSummary:
        return CodexSummary(
            thread_id=self.thread_id,
            final_message=self.final_message,
            commands=tuple(self.commands.values()),
            commands_passed=tuple(self.passed.values()),
            files_changed=tuple(self.files_changed),
            usage=self.usage,
            turns_completed=self.turns_completed,
            failure=self.failure,
            stream_errors=tuple(self.stream_errors),
            warnings=tuple(self.warnings),
        )

    def _turn_completed(self, raw: Any) -> None:
        self.turns_completed += 1
        total = usage_from(raw)
        self.usage = self.usage + total.minus(self.last_total)
        self.last_total = total

    def _item(self, item: dict[str, Any], *, completed: bool) -> None:
        kind = item.get("type")
        item_id = _text(item.get("id")) or f"#{len(self.commands)}"
        if kind == "command_execution":
            command = _text(item.get("command"))
            if command:  # started items count too: a run killed mid-command still ran it
                self.commands.setdefault(item_id, command)
                if completed and item.get("exit_code") == 0 and item.get("status") != "failed":
                    self.passed.setdefault(item_id, command)
        elif not completed:
            return
        elif kind == "agent_message":
            self.final_message = _text(item.get("text"))
        elif kind == "file_change" and item.get("status") == "completed":
            for change in item.get("changes") or []:
                path = _text(change.get("path")) if isinstance(change, dict) else None
                if path:
                    self.files_changed[path] = None
        elif kind == "error":
            self.warnings.append(error_text(item.get("message")))


def parse_codex_events(lines: Iterable[str]) -> CodexSummary:
    """The summary of a whole `codex exec --json` output."""
    parser = CodexEventParser()
    for line in lines:
        parser.feed(line)
    return parser.summary()


def usage_from(raw: Any) -> TokenUsage:
    """`turn.completed.usage` as TokenUsage; missing or malformed counts are zero."""
    if not isinstance(raw, dict):
        return TokenUsage()
    return TokenUsage(
        input_tokens=_count(raw.get("input_tokens")),
        cached_input_tokens=_count(raw.get("cached_input_tokens")),
        output_tokens=_count(raw.get("output_tokens")),
        reasoning_tokens=_count(raw.get("reasoning_output_tokens")),
    )


def error_text(message: Any) -> str:
    """A readable error: codex passes the model API's JSON error body through as the message."""
    text = _text(message) or "unknown error"
    body = _json_object(text)
    if body is not None:
        inner = body.get("error")
        detail = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if isinstance(detail, str) and detail:
            return detail
    return text


def _json_object(line: str) -> dict[str, Any] | None:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
