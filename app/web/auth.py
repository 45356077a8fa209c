"""Who may call: the service's bearer token (everything), or a project's own token (that project only).

Answers are deliberately alike: a missing, malformed or unknown credential is the same 401 body,
so a caller learns nothing about which part was wrong. A valid project token used on another
project's resource (or on a service-wide list) is a 403. Tokens are compared in constant time
(the service token) or looked up by their SHA-256 (project tokens, 256 random bits each).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Collection

from aiohttp import web

from app.errors import AuthenticationError, PermissionDeniedError
from app.services.context import Services
from app.store import agent_runs, projects, protocols, steps
from app.web.keys import SERVICES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROJECT_TOKEN_HEADER = "X-Project-Token"  # noqa: S105 (a header name)
_OWNED = re.compile(r"^/(projects|protocols|steps|agent_runs)/(\d{1,18})(/|$)")


def new_project_token() -> tuple[str, str]:
    """A fresh token and the hash to store: the token is shown once and never kept."""
    token = "tgp_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authentication(
    token: str | None, public_paths: Collection[str], public_prefixes: tuple[str, ...] = ()
) -> Callable:
    """The middleware: with no service token configured, the API is open."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is None or request.path in public_paths or request.path.startswith(public_prefixes):
            return await handler(request)
        offered = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(offered, expected):
            return await handler(request)
        project_token = request.headers.get(PROJECT_TOKEN_HEADER, "")
        if not project_token or len(project_token) > 200:
            raise AuthenticationError("a valid bearer or project token is required")
        svc = request.app[SERVICES]
        async with svc.database.read() as conn:
            allowed = await projects.id_for_token_hash(conn, token_hash(project_token))
        if allowed is None:
            raise AuthenticationError("a valid bearer or project token is required")
        if await _owner(svc, request) != allowed:
            raise PermissionDeniedError("this token is for another project")
        return await handler(request)

    return authenticate


async def _owner(svc: Services, request: web.Request) -> int | None:
    """The project the requested resource belongs to; None for service-wide paths."""
    if request.path == "/events/stream":
        raw = request.query.get("project_id", "")
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
    match = _OWNED.match(request.path)
    if match is None:
        return None
    kind, entity_id = match.group(1), int(match.group(2))
    if kind == "projects":
        return entity_id
    lookup = {
        "protocols": protocols.project_of,
        "steps": steps.project_of,
        "agent_runs": agent_runs.project_of,
    }
    async with svc.database.read() as conn:
        return await lookup[kind](conn, entity_id)
