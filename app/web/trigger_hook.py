"""`POST /projects/{project}/triggers/webhook`: a signed request creates a run in the project.

Like the forges' webhooks it carries no API token: it proves itself by its signature, HMAC-SHA256 of
the raw body under the project's trigger secret (POST /projects/{id}/triggers/webhook/secret), sent as
`X-TasksGodzilla-Signature: sha256=<hex>` and compared in constant time. Its path parameter is
`project`, not `project_id`: a public route may not name a resource for the scope check (which needs
a token), so this one checks its project itself, by the project's own secret.

In order: an unknown project or one without a secret → 503 (the same answer for both); a body past
TASKSGODZILLA_WEBHOOK_MAX_BYTES → 413; a missing or wrong signature → 401; a body that is not
{title, description} → 422 naming the field. A verified delivery creates and starts a run: 201; the
same delivery id again (`X-TasksGodzilla-Delivery`, else the body's hash) → 200 with the run it
created, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from aiohttp import web
from pydantic import Field, ValidationError

from app.domain.scopes import PUBLIC
from app.domain.visible import VisibleLine, VisibleText
from app.errors import AuthenticationError, InvalidInputError, NotConfiguredError, NotFoundError
from app.services import triggers
from app.web.api.models import Strict
from app.web.api.registry import unique_keys
from app.web.keys import SERVICES, SETTINGS
from app.web.scope import resolved, scoped
from app.web.webhooks import read_capped

SIGNATURE_HEADER = "X-TasksGodzilla-Signature"
DELIVERY_HEADER = "X-TasksGodzilla-Delivery"
PATH = "/projects/{project}/triggers/webhook"
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_PROJECT = re.compile(r"[1-9][0-9]{0,17}")


class TriggerBody(Strict):
    title: VisibleLine = Field(min_length=1, max_length=200)
    description: VisibleText = Field("", max_length=20_000)


def trigger_path(project_id: int) -> str:
    return PATH.replace("{project}", str(project_id))


def install(app: web.Application) -> None:
    app.router.add_post(PATH, scoped(PUBLIC)(trigger))


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


async def trigger(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    project_id = await _secret_holder(request)
    secret = await triggers.secret_of(svc, project_id) if project_id is not None else None
    if project_id is None or secret is None:
        raise NotConfiguredError(
            "this project's trigger webhook is not set up: POST /projects/{id}/triggers/webhook/secret"
        )
    body = await read_capped(request, request.app[SETTINGS].webhook_max_bytes)
    offered = request.headers.get(SIGNATURE_HEADER, "")
    good = signature(secret, body).encode("ascii")
    # Compared in constant time, and always compared: a malformed header costs as much as a wrong one.
    if not hmac.compare_digest(good, offered.encode("utf-8", "replace")) or not _SIGNATURE.fullmatch(offered):
        raise AuthenticationError(f"a valid {SIGNATURE_HEADER} header is required")
    delivery = request.headers.get(DELIVERY_HEADER) or "sha256:" + hashlib.sha256(body).hexdigest()
    if not _DELIVERY_ID.fullmatch(delivery):
        raise InvalidInputError(f"{DELIVERY_HEADER} is malformed", field=DELIVERY_HEADER)
    fields = _body(body)
    run, new = await triggers.trigger_run(
        svc, project_id, delivery_id=delivery, title=fields.title, description=fields.description
    )
    answer = {"protocol_run_id": run.id, "name": run.name, "status": str(run.status), "new": new}
    return web.json_response(answer, status=201 if new else 200)


async def _secret_holder(request: web.Request) -> int | None:
    """The project id named in the path, if it is a whole number of a project that exists."""
    text = resolved(request).path["project"]
    if not _PROJECT.fullmatch(text):
        return None
    try:
        await triggers.project_exists(request.app[SERVICES], int(text))
    except NotFoundError:
        return None
    return int(text)


def _body(raw: bytes) -> TriggerBody:
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):
        raise InvalidInputError("the body is not a JSON document", field="body") from None
    try:
        return TriggerBody.model_validate(data)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise InvalidInputError(f"{where}: {error['msg']}", field=where) from None
