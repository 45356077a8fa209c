"""Issue deliveries (`issues` from GitHub, `Issue Hook` from GitLab), verified by app/web/webhooks.py
like every delivery there, handed to issue intake (app/services/intake.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.domain.ci import Provider
from app.domain.intake import parse_github_issue, parse_gitlab_issue
from app.services import intake
from app.services.webhooks import Receipt
from app.web.keys import SERVICES

ISSUE_EVENTS = {Provider.GITHUB: "issues", Provider.GITLAB: "Issue Hook"}


def is_issue_event(provider: Provider, event: str) -> bool:
    return ISSUE_EVENTS[provider] == event


async def receive_issue(
    request: web.Request, provider: Provider, delivery: str, event: str, payload: Any
) -> web.Response:
    """Apply the delivery's issue now (202), or say why not, or that it came before (200)."""
    parse = parse_github_issue if provider is Provider.GITHUB else parse_gitlab_issue
    issue = parse(payload)
    if issue is not None and not issue.repository:
        issue = None
    received = await intake.receive_issue(
        request.app[SERVICES],
        provider=provider,
        delivery_id=delivery,
        event=event,
        issue=issue,
        why="not an issue of a repository (a pull request, or a payload without one)",
    )
    status = 202 if received.receipt is Receipt.QUEUED else 200
    body = {"delivery": received.id, "status": str(received.receipt), "detail": received.detail}
    return web.json_response(body, status=status)
