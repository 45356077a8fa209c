"""A scripted OpenAI Responses API endpoint, so the real Codex CLI can run without a paid model.

Codex POSTs `/v1/responses` with `stream: true` and reads Server-Sent Events. Each request is
answered by the next turn of a script: a shell command for codex to run (`exec_command` function
call), a patch for it to apply (`apply_patch`), an assistant message (plain text or JSON), an HTTP
error with an OpenAI-shaped body, or a hang. Codex sends a tool's output back, with the same
`call_id`, in its next request; the script's next turn answers that.
Every request body is recorded for assertions. The SSE shapes follow codex's own test support
(codex-rs/core/tests/common/responses.rs).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app.domain.usage import TokenUsage

PROVIDER_ID = "fake"
API_KEY_ENV = "FAKE_OPENAI_KEY"
API_KEY = "test"
# Codex homes live under the repository's .cache, not /tmp (see DESIGN.md).
CODEX_HOMES = Path(__file__).resolve().parents[2] / ".cache" / "codex-home"


@dataclass(frozen=True)
class Usage:
    """What one model response reports; codex sums these over the requests of a turn."""

    input_tokens: int = 100
    cached_input_tokens: int = 0
    output_tokens: int = 10
    reasoning_tokens: int = 0

    def as_token_usage(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            output_tokens=self.output_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )


@dataclass(frozen=True)
class ToolCall:
    """The model asks codex to run `cmd` in its sandbox (codex's `exec_command` tool)."""

    cmd: str
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")
    usage: Usage = Usage()


@dataclass(frozen=True)
class ApplyPatch:
    """The model asks codex to apply a patch in codex's own format: its freeform `apply_patch` tool,
    a `custom_tool_call`. Codex offers that tool only to models it knows (not to an unknown `-m`)."""

    patch: str
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")
    usage: Usage = Usage()


@dataclass(frozen=True)
class Message:
    """The model answers with an assistant message; JSON text when an output schema was asked for."""

    text: str
    usage: Usage = Usage()


@dataclass(frozen=True)
class HttpError:
    """The endpoint refuses the request with an OpenAI-shaped error body."""

    status: int = 400
    message: str = "invalid_request: scripted failure"
    code: str = "scripted_failure"


@dataclass(frozen=True)
class Hang:
    """The endpoint never answers."""


Turn = ToolCall | ApplyPatch | Message | HttpError | Hang


def total_usage(script: list[Turn]) -> TokenUsage:
    """The usage codex should report for a script played to its end."""
    total = TokenUsage()
    for turn in script:
        if isinstance(turn, ToolCall | ApplyPatch | Message):
            total = total + turn.usage.as_token_usage()
    return total


class FakeOpenAI:
    """An aiohttp server on 127.0.0.1 that plays `script`, one turn per `/v1/responses` request."""

    def __init__(self) -> None:
        self.script: list[Turn] = []
        self.requests: list[dict[str, Any]] = []
        self.other_requests: list[str] = []  # anything but POST /v1/responses, e.g. model listing
        self._turns: Iterator[Turn] = iter(())
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self.port = 0

    def play(self, *turns: Turn) -> None:
        """Answer the next requests with `turns`, in order."""
        self.script = list(turns)
        self._turns = iter(self.script)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))  # a free port, known before the site starts
        self.port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def prompts(self) -> list[str]:
        """Every user `input_text` the endpoint received, in order."""
        texts = []
        for body in self.requests:
            for item in body.get("input", []):
                if item.get("type") == "message" and item.get("role") == "user":
                    texts += [part.get("text", "") for part in item.get("content", [])]
        return texts

    def call_outputs(self, call_id: str) -> list[str]:
        """What codex sent back for the tool call `call_id` (the command's or the patch's output)."""
        kinds = ("function_call_output", "custom_tool_call_output")
        return [
            str(item.get("output"))
            for body in self.requests
            for item in body.get("input", [])
            if item.get("type") in kinds and item.get("call_id") == call_id
        ]

    async def _other(self, request: web.Request) -> web.Response:
        self.other_requests.append(f"{request.method} {request.path}")
        return _error_response(404, f"fake endpoint has no {request.path}", "not_found")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        turn = next(self._turns, None)
        if turn is None:
            return _error_response(500, "fake endpoint: the script has no more turns", "script_exhausted")
        if isinstance(turn, HttpError):
            return _error_response(turn.status, turn.message, turn.code)
        if isinstance(turn, Hang):
            await asyncio.Event().wait()  # until the server shuts down and cancels the handler
        assert isinstance(turn, ToolCall | ApplyPatch | Message)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in self._events(turn):
            await response.write(_sse(event))
        await response.write_eof()
        return response

    def _events(self, turn: ToolCall | ApplyPatch | Message) -> list[dict[str, Any]]:
        response_id = f"resp_{next(self._ids)}"
        item = _output_item(turn)
        return [
            {"type": "response.created", "response": {"id": response_id}},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": {"id": response_id, "usage": _usage(turn.usage)}},
        ]


def _output_item(turn: ToolCall | ApplyPatch | Message) -> dict[str, Any]:
    if isinstance(turn, ToolCall):
        return {
            "type": "function_call",
            "id": f"fc_{turn.call_id}",
            "call_id": turn.call_id,
            "name": "exec_command",
            "arguments": json.dumps({"cmd": turn.cmd}),
        }
    if isinstance(turn, ApplyPatch):
        return {
            "type": "custom_tool_call",
            "id": f"ctc_{turn.call_id}",
            "call_id": turn.call_id,
            "name": "apply_patch",
            "input": turn.patch,
        }
    return {
        "type": "message",
        "role": "assistant",
        "id": f"msg_{uuid.uuid4().hex[:12]}",
        "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
    }


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _error_response(status: int, message: str, code: str) -> web.Response:
    error = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return web.json_response(error, status=status)


def provider_overrides(base_url: str) -> list[str]:
    """`-c` values that point codex at the endpoint, with no retries so failures are quick."""
    provider = (
        f'{{name="{PROVIDER_ID}", base_url="{base_url}", wire_api="responses", env_key="{API_KEY_ENV}", '
        "request_max_retries=0, stream_max_retries=0}"
    )
    return [f"model_provider={PROVIDER_ID}", f"model_providers.{PROVIDER_ID}={provider}"]


def codex_env(codex_home: Path, path: str, home: Path) -> dict[str, str]:
    """The whole environment a test codex runs with: its own home, the fake key, nothing else of ours."""
    return {"CODEX_HOME": str(codex_home), API_KEY_ENV: API_KEY, "PATH": path, "HOME": str(home)}


@pytest.fixture(name="fake_openai")
async def fake_openai_fixture() -> AsyncIterator[FakeOpenAI]:
    """A started scripted endpoint; call `.play(...)` before running codex."""
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(name="codex_homes", scope="session")
def codex_homes_fixture() -> Iterator[Path]:
    """A folder for this session's CODEX_HOMEs, removed at the end."""
    root = CODEX_HOMES / uuid.uuid4().hex[:12]
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(root)


@pytest.fixture(name="codex_home")
def codex_home_fixture(codex_homes: Path) -> Path:
    """A fresh, empty CODEX_HOME for one test."""
    home = codex_homes / uuid.uuid4().hex[:12]
    home.mkdir()
    return home
