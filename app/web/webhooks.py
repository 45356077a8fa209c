"""`POST /webhooks/github` and `POST /webhooks/gitlab`: forges and CI scripts report here.

These paths are public to the API's tokens (a forge cannot send them); each delivery proves itself instead:
GitHub by its HMAC signature over the raw body, GitLab by its token, both compared in constant time.
In order: no secret configured → 503 (never accept-all); a body past TASKSGODZILLA_WEBHOOK_MAX_BYTES
→ 413 (read with our own cap, before anything else looks at it); a missing, malformed or wrong
signature → 401, before the body is parsed. A verified delivery is recorded once under its delivery id
and its effect queued: 202. A redelivery is 200 and does nothing; so is one that can change nothing.
Review deliveries (app.forges.reviews) and the original project's report.sh (app.forges.origin_report:
accepted with `?protocol_run_id=`, else a 422 saying how to switch) are read before the CI parsers.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from pydantic import SecretStr

from app.domain.ci import AnySignal, Provider
from app.domain.scopes import PUBLIC
from app.errors import InvalidInputError, NotConfiguredError, PayloadTooLargeError
from app.forges.github import parse_github
from app.forges.gitlab import parse_gitlab
from app.forges.origin_report import origin_signal
from app.forges.reviews import parse_review
from app.forges.signatures import (
    GITHUB_SIGNATURE_HEADER,
    GITLAB_TOKEN_HEADER,
    verify_github_signature,
    verify_gitlab_token,
)
from app.services import webhooks
from app.web.api.registry import unique_keys
from app.web.intake_hooks import is_issue_event, receive_issue
from app.web.keys import SERVICES, SETTINGS
from app.web.scope import resolved, scoped

GITHUB_PATH = "/webhooks/github"
GITLAB_PATH = "/webhooks/gitlab"
PATHS = frozenset({GITHUB_PATH, GITLAB_PATH})
CHUNK = 64 * 1024
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_EVENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,99}")


def install(app: web.Application) -> None:
    # Public to the scope check: no token reaches here; each delivery proves itself by its signature.
    app.router.add_post(GITHUB_PATH, scoped(PUBLIC)(github))
    app.router.add_post(GITLAB_PATH, scoped(PUBLIC)(gitlab))


async def github(request: web.Request) -> web.Response:
    """A GitHub delivery (or scripts/ci/report.sh in GitHub mode)."""
    settings = request.app[SETTINGS]
    secrets = _configured(settings.github_webhook_secret, settings.webhook_token)
    if not secrets:
        raise NotConfiguredError(
            "GitHub webhooks are not set up here: set TASKSGODZILLA_GITHUB_WEBHOOK_SECRET"
        )
    body = await read_capped(request, settings.webhook_max_bytes)
    verify_github_signature(secrets, body, request.headers.get(GITHUB_SIGNATURE_HEADER))
    event = _event(request.headers.get("X-GitHub-Event"), "X-GitHub-Event")
    delivery = _delivery_id(body, request.headers.get("X-GitHub-Delivery"))
    data = _payload(request, body)
    if is_issue_event(Provider.GITHUB, event):  # issue intake
        return await receive_issue(request, Provider.GITHUB, delivery, event, data)
    signal = (
        origin_signal(Provider.GITHUB, event, data, resolved(request).query)
        or parse_review(Provider.GITHUB, event, data)
        or parse_github(event, data)
    )
    return await _receive(request, Provider.GITHUB, delivery, event, signal)


async def gitlab(request: web.Request) -> web.Response:
    """A GitLab delivery (or scripts/ci/report.sh in GitLab mode)."""
    settings = request.app[SETTINGS]
    secrets = _configured(settings.gitlab_webhook_token, settings.webhook_token)
    if not secrets:
        raise NotConfiguredError(
            "GitLab webhooks are not set up here: set TASKSGODZILLA_GITLAB_WEBHOOK_TOKEN"
        )
    body = await read_capped(request, settings.webhook_max_bytes)
    verify_gitlab_token(secrets, request.headers.get(GITLAB_TOKEN_HEADER))
    event = _event(request.headers.get("X-Gitlab-Event"), "X-Gitlab-Event")
    # GitLab keeps Idempotency-Key across its retries of one delivery; older versions send only the UUID.
    offered = request.headers.get("Idempotency-Key") or request.headers.get("X-Gitlab-Event-UUID")
    delivery = _delivery_id(body, offered)
    data = _payload(request, body)
    if is_issue_event(Provider.GITLAB, event):  # issue intake
        return await receive_issue(request, Provider.GITLAB, delivery, event, data)
    signal = (
        origin_signal(Provider.GITLAB, event, data, resolved(request).query)
        or parse_review(Provider.GITLAB, event, data)
        or parse_gitlab(event, data)
    )
    return await _receive(request, Provider.GITLAB, delivery, event, signal)


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to be larger than `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:  # a chunked body says its size only by being sent
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _configured(*values: SecretStr | None) -> list[str]:
    return [value.get_secret_value() for value in values if value is not None and value.get_secret_value()]


def _event(value: str | None, header: str) -> str:
    if value is None or not _EVENT.fullmatch(value):
        raise InvalidInputError(f"{header} is missing or malformed", field=header)
    return value


def _delivery_id(body: bytes, offered: str | None) -> str:
    """The forge's delivery id; without one, the body's hash (an identical body has the same effect)."""
    if offered is None:
        return "sha256:" + hashlib.sha256(body).hexdigest()
    if not _DELIVERY_ID.fullmatch(offered):
        raise InvalidInputError("the delivery id is malformed", field="delivery")
    return offered


def _payload(request: web.Request, body: bytes) -> Any:
    """The JSON document, sent as JSON or (a GitHub option) as the form field `payload`; a key given
    twice (in the form or in a JSON object) is refused, as everywhere."""
    text = body.decode("utf-8", "replace")
    if request.content_type == "application/x-www-form-urlencoded":
        fields = parse_qs(text, max_num_fields=10)
        if len(fields.get("payload", [])) > 1:
            raise InvalidInputError("the form field payload is given twice", field="payload")
        text = fields.get("payload", [""])[0]
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):
        raise InvalidInputError("the body is not a JSON document", field="body") from None


async def _receive(
    request: web.Request,
    provider: Provider,
    delivery: str,
    event: str,
    signal: AnySignal,
) -> web.Response:
    received = await webhooks.receive(
        request.app[SERVICES], provider=provider, delivery_id=delivery, event=event, signal=signal
    )
    status = 202 if received.receipt is webhooks.Receipt.QUEUED else 200
    body = {"delivery": received.id, "status": str(received.receipt), "detail": received.detail}
    return web.json_response(body, status=status)
