"""A scripted Anthropic Messages API on 127.0.0.1, for driving the real Claude Code CLI in tests.

Each main-loop request (`POST /v1/messages`, streaming, with tools) plays the next turn of the script
as the real API would stream it (SSE). Anything else the CLI asks for gets a small sensible answer,
so it never hangs waiting on us. Every request is recorded for assertions.

    server.play(ToolUse("Write", {"file_path": "a.txt", "content": "x"}), Text("done"))
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

DEFAULT_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 20,
    "cache_creation_input_tokens": 10,
    "output_tokens": 7,
}


@dataclass(frozen=True)
class Text:
    """The model answers with text and ends its turn."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """The model calls one tool (Write, Bash, StructuredOutput, ...) and waits for its result."""

    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ApiError:
    """The API refuses the request with an Anthropic-shaped error body."""

    status: int = 400
    error_type: str = "invalid_request_error"
    message: str = "scripted failure"


@dataclass(frozen=True)
class Hang:
    """The API accepts the request and never answers."""


Turn = Text | ToolUse | ApiError | Hang


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def is_main_loop(self) -> bool:
        """A turn of the agent loop (as opposed to a side request such as a title or token count)."""
        return (
            self.method == "POST"
            and self.path == "/v1/messages"
            and isinstance(self.body, dict)
            and bool(self.body.get("stream"))
            and bool(self.body.get("tools"))
        )

    def user_text(self) -> str:
        """All text the CLI sent as the user (the prompt, system reminders), joined."""
        texts = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if message.get("role") != "user":
                continue
            if isinstance(content, str):
                texts.append(content)
            else:
                texts += [b.get("text", "") for b in content if b.get("type") == "text"]
        return "\n".join(texts)

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks the CLI sent back in this request's last user message."""
        for message in reversed(self.body.get("messages", [])):
            if message.get("role") == "user" and isinstance(message.get("content"), list):
                return [b for b in message["content"] if b.get("type") == "tool_result"]
        return []


@dataclass
class FakeAnthropic:
    """The server; `play()` sets the script, `requests` records what the CLI sent."""

    usage: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_USAGE))
    script: list[Turn] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _turns_played: int = 0

    def play(self, *turns: Turn) -> None:
        self.script = list(turns)
        self._turns_played = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def main_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_main_loop]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._closing.set()  # releases hanging handlers
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = RecordedRequest(request.method, request.path, dict(request.headers), body)
        self.requests.append(recorded)
        if recorded.is_main_loop:
            return await self._play_turn(request, recorded.body)
        if request.method == "POST" and request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": self.usage["input_tokens"]})
        if request.method == "POST" and request.path == "/v1/messages" and isinstance(body, dict):
            return await self._side_answer(request, body)
        if request.method == "HEAD":
            return web.Response()  # the CLI's connectivity probe
        return _error(404, "not_found_error", f"no such endpoint: {request.path}")

    async def _play_turn(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if self._turns_played >= len(self.script):
            # Fail the run loudly rather than inventing an answer the test did not script.
            return _error(400, "invalid_request_error", "fake_anthropic: script exhausted")
        turn = self.script[self._turns_played]
        self._turns_played += 1
        if isinstance(turn, ApiError):
            return _error(turn.status, turn.error_type, turn.message)
        if isinstance(turn, Hang):
            await self._closing.wait()
            return web.Response(status=503)
        number = self._turns_played
        return await self._stream(request, body["model"], _content_block(turn, number), number)

    async def _side_answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """Titles, summaries and similar helper calls: a short text answer, streamed or not."""
        block = {"type": "text", "text": "ok"}
        if body.get("stream"):
            return await self._stream(request, body.get("model", "claude"), block, 0)
        return web.json_response(
            {
                "id": "msg_side",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "claude"),
                "content": [block],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": self.usage,
            }
        )

    async def _stream(
        self, request: web.Request, model: str, block: dict[str, Any], number: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for event, data in _sse_events(model, block, number, self.usage):
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        await response.write_eof()
        return response


def _content_block(turn: Text | ToolUse, number: int) -> dict[str, Any]:
    if isinstance(turn, Text):
        return {"type": "text", "text": turn.text}
    return {"type": "tool_use", "id": f"toolu_{number:04d}", "name": turn.name, "input": turn.input}


def _sse_events(
    model: str, block: dict[str, Any], number: int, usage: dict[str, int]
) -> list[tuple[str, dict[str, Any]]]:
    """One assistant message with one content block, event by event as the Messages API streams it."""
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": block["text"]}
        stop_reason = "end_turn"
    else:
        start = {**block, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        stop_reason = "tool_use"
    message = {
        "id": f"msg_{number:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    return [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _error(status: int, error_type: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.json_response(body, status=status, headers={"request-id": "req_fake"})


def processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is `folder`: what an agent run may have left behind."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(os.readlink(f"/proc/{entry}/cwd")) == folder.resolve():
                found.append(int(entry))
        except OSError:
            continue
    return found


def claude_environment(base_url: str, home: Path) -> dict[str, str]:
    """What the CLI needs to talk to `base_url` only: fresh config, test key, no background traffic."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "test-key-not-a-secret",
        # Auto-update, telemetry, error reports, release notes and similar side traffic off.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        # 400/5xx answers are final: no retries with back-off inside a test.
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def claude_env(fake_anthropic: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    """The environment of a Claude Code run against `fake_anthropic`, with a home of its own."""
    return claude_environment(fake_anthropic.base_url, tmp_path / "claude-home")
