"""A project's notification channels: add, list, delete, and send a test message."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.notifications import KINDS
from app.domain.scopes import tenant
from app.errors import NotFoundError
from app.services import notify_channels, notify_delivery
from app.web.api.common import services
from app.web.api.models import Strict
from app.web.api.registry import Api

api = Api()
TAG = "notifications"

Kind = Literal[
    "run.blocked",
    "step.needs_input",
    "budget.stopped",
    "ci.gave_up",
    "pr.ready",
    "run.completed",
    "run.failed",
    "run.cancelled",
]
assert set(Kind.__args__) == set(KINDS)  # type: ignore[attr-defined]


class ChannelCreate(Strict):
    name: str = Field(min_length=1, max_length=64, description="Unique in the project")
    channel_type: Literal["webhook", "slack", "email"] = Field(
        description="`webhook`: JSON POST signed (HMAC-SHA256); `slack`: an incoming webhook; `email`: SMTP"
    )
    kinds: list[Kind] | None = Field(
        None, min_length=1, description="What it is told of (absent: everything)"
    )
    url: str | None = Field(
        None, max_length=2048, description="`webhook`, `slack`: where to POST (kept encrypted)"
    )
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=256,
        description="`webhook`: the signing key (absent: one is made, shown once)",
    )
    recipients: list[str] | None = Field(None, max_length=20, description="`email`: addresses")


class Channel(BaseModel):
    id: int
    project_id: int
    name: str
    channel_type: str
    kinds: list[str]
    host: str | None = Field(description="The URL's host (the URL itself is never shown)")
    recipients: list[str] | None
    created_at: datetime
    secret: str | None = Field(
        None, description="The signing secret the service made: shown once, at creation"
    )


class TestResult(BaseModel):
    delivered: bool
    error: str | None = Field(description="Why it did not arrive (never the URL or a secret)")


def _channel_id(raw: str) -> int:
    """The channel's id from the path (checked against the path's project by the service)."""
    if not raw.isdigit() or len(raw) > 18:
        raise NotFoundError(f"notification channel {raw[:40]!r} not found", field="channel")
    return int(raw)


@api.route(
    "GET",
    "/projects/{project_id}/notifications",
    summary="The project's notification channels and the kinds each takes",
    tag=TAG,
    scope=tenant(),
    response=list[Channel],
    errors=(404,),
)
async def list_channels(request: web.Request, project_id: int) -> list[Channel]:
    found = await notify_channels.list_channels(services(request), project_id)
    return [Channel.model_validate(asdict(c)) for c in found]


@api.route(
    "POST",
    "/projects/{project_id}/notifications",
    summary="Add a notification channel (JSON webhook, Slack-compatible webhook or e-mail)",
    tag=TAG,
    scope=tenant(),
    body=ChannelCreate,
    response=Channel,
    status=201,
    errors=(404, 422),
)
async def add_channel(request: web.Request, project_id: int, body: ChannelCreate) -> Channel:
    made = await notify_channels.add_channel(services(request), project_id, **body.model_dump())
    return Channel.model_validate(asdict(made))


@api.route(
    "DELETE",
    "/projects/{project_id}/notifications/{channel}",
    summary="Delete a notification channel",
    tag=TAG,
    scope=tenant(),
    status=204,
    errors=(404,),
)
async def delete_channel(request: web.Request, project_id: int, channel: str) -> web.Response:
    await notify_channels.delete_channel(services(request), project_id, _channel_id(channel))
    return web.Response(status=204)


@api.route(
    "POST",
    "/projects/{project_id}/notifications/{channel}/test",
    summary="Send a test message on a channel now (not queued, not retried)",
    tag=TAG,
    scope=tenant(),
    response=TestResult,
    errors=(404,),
)
async def test_channel(request: web.Request, project_id: int, channel: str) -> TestResult:
    svc = services(request)
    error = await notify_delivery.send_test(svc, project_id, _channel_id(channel))
    return TestResult(delivered=error is None, error=error)
