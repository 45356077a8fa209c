"""Reading Claude Code's `--output-format stream-json` transcript: pure functions over its lines.

The stream is one JSON object per line: a `system`/`init` line, `assistant` and `user` messages
(tool calls and their results, subagents' included), and a final `result` line carrying the answer,
the usage and the cost. Only that last line says whether the run succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from app.domain.usage import CENT_FRACTION, TokenUsage

COMMAND_TOOLS = {"Bash": "command"}
ERROR_DETAIL_CHARS = 2000
FILE_TOOLS = {
    "Edit": "file_path",
    "Write": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}


@dataclass(frozen=True)
class ClaudeRun:
    """What a Claude Code transcript says happened."""

    has_result: bool
    succeeded: bool
    final_message: str | None = None
    structured_output: dict[str, Any] | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: Decimal | None = None
    model: str | None = None
    files_changed: list[str] = field(default_factory=list)
    commands_run: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class _ToolCall:
    name: str
    target: str | None  # the command run, or the path written; the rest of the input is not kept
    failed: bool = False


class ClaudeStream:
    """Reads the transcript one line at a time, so a run far beyond the output cap is still followed."""

    def __init__(self, *workdirs: Path) -> None:
        # Paths under any of these (say the worktree as given and as resolved) are made relative.
        self._workdirs = workdirs
        self._model: str | None = None
        self._calls: dict[str, _ToolCall] = {}
        self._message_usage: dict[str, TokenUsage] = {}
        self._result: dict[str, Any] | None = None

    @property
    def usage_so_far(self) -> TokenUsage:
        """The usage of the messages read so far (the result line, at the end, has the total)."""
        return sum(self._message_usage.values(), TokenUsage())

    def feed(self, line: str) -> None:
        """Take one stdout line; anything that is not a JSON object is ignored."""
        event = _event(line)
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self._model = _text(event.get("model")) or self._model
        elif kind == "assistant":
            self._read_assistant(_dict(event.get("message")))
        elif kind == "user":
            self._read_tool_results(_dict(event.get("message")))
        elif kind == "result":
            self._result = event

    def finish(self) -> ClaudeRun:
        """What the lines fed so far say about the run."""
        result, calls = self._result, self._calls
        if result is None:
            # Killed or crashed before the end: the messages' own usage is a lower bound of the spend.
            usage = sum(self._message_usage.values(), TokenUsage())
            return ClaudeRun(has_result=False, succeeded=False, usage=usage, model=self._model)
        _mark_denied(result, calls)
        succeeded = result.get("subtype") == "success" and result.get("is_error") is False
        structured = result.get("structured_output")
        return ClaudeRun(
            has_result=True,
            succeeded=succeeded,
            final_message=_text(result.get("result")),
            structured_output=structured if isinstance(structured, dict) else None,
            usage=usage_of(_dict(result.get("usage"))),
            cost_usd=cost_of_result(result),
            model=self._model,
            files_changed=_unique(c.target for c in calls.values() if c.name in FILE_TOOLS and not c.failed),
            commands_run=[
                c.target for c in calls.values() if c.name in COMMAND_TOOLS and c.target and not c.failed
            ],
            error=None if succeeded else _failure_text(result),
        )

    def _read_assistant(self, message: dict[str, Any]) -> None:
        # One API message arrives as several lines (one per content block) sharing its id.
        key = _text(message.get("id")) or f"#{len(self._message_usage)}"
        self._message_usage[key] = usage_of(_dict(message.get("usage")))
        for block in _blocks(message):
            call_id = _text(block.get("id"))
            if block.get("type") == "tool_use" and call_id:
                name = _text(block.get("name")) or ""
                self._calls[call_id] = _ToolCall(name, self._target(name, _dict(block.get("input"))))

    def _target(self, name: str, tool_input: Mapping[str, Any]) -> str | None:
        if name in COMMAND_TOOLS:
            return _text(tool_input.get(COMMAND_TOOLS[name]))
        path = _text(tool_input.get(FILE_TOOLS[name])) if name in FILE_TOOLS else None
        return _relative(path, self._workdirs) if path else None

    def _read_tool_results(self, message: dict[str, Any]) -> None:
        for block in _blocks(message):
            call = self._calls.get(_text(block.get("tool_use_id")) or "")
            # A refused or failed edit changed nothing; a command that failed still ran.
            if (
                block.get("type") == "tool_result"
                and call
                and block.get("is_error")
                and call.name in FILE_TOOLS
            ):
                call.failed = True


def parse_stream(lines: Iterable[str], *workdirs: Path) -> ClaudeRun:
    """Fold a whole transcript into a ClaudeRun."""
    stream = ClaudeStream(*workdirs)
    for line in lines:
        stream.feed(line)
    return stream.finish()


def usage_of(usage: Mapping[str, Any]) -> TokenUsage:
    """Anthropic usage → ours: cache reads and cache writes are input tokens too."""
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=_int(usage.get("input_tokens")) + cache_read + cache_write,
        cached_input_tokens=cache_read,
        output_tokens=_int(usage.get("output_tokens")),
    )


def cost_of_result(result: Mapping[str, Any]) -> Decimal | None:
    """The CLI's own cost: `total_cost_usd`, else the sum over `modelUsage`; None when it gave none."""
    total = _decimal(result.get("total_cost_usd"))
    if total is None:
        per_model = [_decimal(_dict(u).get("costUSD")) for u in _dict(result.get("modelUsage")).values()]
        known = [c for c in per_model if c is not None]
        total = sum(known, Decimal(0)) if known else None
    return None if total is None else total.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


def price_key(model: str | None) -> str | None:
    """The price-table name of a model: the CLI reports variants such as `claude-opus-4-8[1m]`."""
    if model is None:
        return None
    return model.split("[", 1)[0]


def _event(line: str) -> dict[str, Any]:
    line = line.strip()
    if not line.startswith("{"):
        return {}
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _mark_denied(result: Mapping[str, Any], calls: dict[str, _ToolCall]) -> None:
    denials = result.get("permission_denials")
    for denial in denials if isinstance(denials, list) else []:
        call = calls.get(_text(_dict(denial).get("tool_use_id")) or "")
        if call is not None:
            call.failed = True


def _unique(items: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def _relative(path: str, workdirs: Sequence[Path]) -> str:
    """Inside the worktree: relative to it (stored paths must not depend on where it was checked out)."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return candidate.as_posix()
    for root in workdirs:
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    return path


def _failure_text(result: Mapping[str, Any]) -> str:
    subtype = _text(result.get("subtype")) or "unknown"
    errors = result.get("errors")
    detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else None
    detail = (detail or _text(result.get("result")) or "")[:ERROR_DETAIL_CHARS]
    status = result.get("api_error_status")
    prefix = f"claude failed ({subtype}" + (f", HTTP {status})" if status else ")")
    return f"{prefix}: {detail}" if detail else prefix


def _blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None
