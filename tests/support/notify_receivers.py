"""Local receivers speaking each notification channel's real wire format.

- `HttpReceiver("webhook", secret)`: a JSON webhook endpoint that checks the HMAC-SHA256 signature
  of the exact body (401 when it does not match), as a receiver following the README would.
- `HttpReceiver("slack")`: a Slack incoming webhook: a JSON body with `text` and Block Kit `blocks`
  of the documented shapes (400 `invalid_blocks` otherwise), answered `ok` as Slack does.
- `SmtpReceiver`: an aiosmtpd server (with AUTH LOGIN/PLAIN over plain text, for the test only).
Each can fail its first `fail_first` requests (500, or SMTP 451) to exercise retries.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def slack_shape_problem(payload: Any) -> str | None:
    """Why `payload` is not an incoming-webhook message as Slack documents it (None when it is)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str) or not payload["text"]:
        return "no text"
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return "blocks must be a list of 1 to 50"
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            if block["text"]["type"] != "plain_text" or len(block["text"]["text"]) > 150:
                return "header text must be plain_text of at most 150 characters"
        elif kind == "section":
            if block["text"]["type"] not in ("mrkdwn", "plain_text") or len(block["text"]["text"]) > 3000:
                return "section text"
            fields = block.get("fields", [])
            if len(fields) > 10 or any(f["type"] not in ("mrkdwn", "plain_text") for f in fields):
                return "section fields"
        elif kind == "actions":
            for element in block["elements"]:
                if element["type"] != "button" or element["text"]["type"] != "plain_text":
                    return "actions elements must be buttons with plain_text"
                if not str(element.get("url", "")).startswith(("http://", "https://")):
                    return "button url"
        else:
            return f"unexpected block type {kind!r}"
    return None


@dataclass
class HttpReceiver:
    flavour: str  # webhook or slack
    secret: str | None = None
    fail_first: int = 0
    calls: int = 0
    received: list[Request] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/s3cr3t-path-token"

    async def __aenter__(self) -> HttpReceiver:
        app = web.Application()
        app.router.add_post("/hooks/{rest:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls += 1
        if self.calls <= self.fail_first:
            return web.Response(status=500, text="try again later")
        if request.content_type != "application/json":
            self.refused.append("content type")
            return web.Response(status=400, text="invalid_payload")
        if self.flavour == "webhook":
            expected = "sha256=" + hmac.new((self.secret or "").encode(), body, hashlib.sha256).hexdigest()
            given = request.headers.get("X-TasksGodzilla-Signature", "")
            if not hmac.compare_digest(given, expected):
                self.refused.append("signature")
                return web.Response(status=401, text="bad signature")
        else:
            problem = slack_shape_problem(json.loads(body))
            if problem is not None:
                self.refused.append(problem)
                return web.Response(status=400, text="invalid_blocks")
        self.received.append(Request(request.path, dict(request.headers), body))
        return web.Response(text="ok")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Sink:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiver.calls += 1
        if self.receiver.calls <= self.receiver.fail_first:
            return "451 4.3.0 try again later"
        self.receiver.logins.append(session.auth_data)
        self.receiver.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.original_content))
        )
        return "250 2.0.0 accepted"


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 that takes one user's login and keeps what it is sent."""

    def __init__(self, *, user: str, password: str, fail_first: int = 0) -> None:
        self.user, self.password, self.fail_first = user, password, fail_first
        self.calls = 0
        self.logins: list[Any] = []
        self.envelopes: list[tuple[str, list[str], Message]] = []
        self.port = free_port()
        self._controller = Controller(
            _Sink(self),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=True,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, auth_data=data if ok else None)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
