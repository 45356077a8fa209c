"""Who calls the API: the service's bearer token (the operator: everything), an organisation's token
(`X-Organisation-Token`: that organisation's projects), or a project's token (`X-Project-Token`: that
project only). What each may reach is checked next, by the one scope check (app/web/scope.py).

Answers are deliberately alike: a missing, malformed or unknown credential is the same 401 body,
so a caller learns nothing about which part was wrong. A valid token used on a resource out of its
reach, or on a service-wide route, is a 403. The service token is compared in constant time; the
others are looked up by their SHA-256 (256 random bits each). A missing token costs the same lookup
as a wrong one (of a dummy's hash), so the answer's timing does not tell whether one was sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.acting import acting_as
from app.domain.actors import Via, actor_for
from app.domain.scopes import OPERATOR, Access, Level, Principal
from app.domain.tokens import token_hash
from app.errors import AuthenticationError
from app.store import tenancy
from app.store.database import Database
from app.web.keys import SERVICES
from app.web.scope import CHECKS_ITS_OWN, resolve, scope_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROJECT_TOKEN_HEADER = "X-Project-Token"  # noqa: S105 (a header name)
ORGANISATION_TOKEN_HEADER = "X-Organisation-Token"  # noqa: S105 (a header name)
MAX_TOKEN_LENGTH = 200
# Looked up when no usable token was offered: no token hashes to it (ours all start with `tg`).
_NO_TOKEN = "none-offered"  # noqa: S105 (no one's token, by construction)
_REFUSED = "a valid bearer, organisation or project token is required"


async def principal_for_token(database: Database, offered: str) -> Principal | None:
    """The organisation or project whose token `offered` is (None when none): always one lookup,
    of a dummy's hash when nothing usable was offered."""
    usable = 0 < len(offered) <= MAX_TOKEN_LENGTH
    digest = token_hash(offered if usable else _NO_TOKEN)
    found = await tenancy.principal_for_token_hash(database, digest)
    return found if usable else None


async def api_principal(request: web.Request, expected: bytes | None) -> Principal:
    """The caller of an API route, or the one 401."""
    if expected is None:
        return OPERATOR  # no service token configured: the API is open
    if hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
        return OPERATOR
    project = request.headers.get(PROJECT_TOKEN_HEADER)
    organisation = request.headers.get(ORGANISATION_TOKEN_HEADER)
    wanted = Level.ORGANISATION if organisation is not None else Level.PROJECT
    offered = organisation if project is None else project
    if project is not None and organisation is not None:
        offered = ""  # two tokens: neither counts (and the same lookup happens)
    found = await principal_for_token(request.app[SERVICES].database, offered or "")
    if found is None or found.level is not wanted:
        raise AuthenticationError(_REFUSED)
    return found


def authentication(token: str | None) -> Callable:
    """The middleware for the application's own routes: who calls, then the scope check, then the
    handler acting for that caller (app/acting.py). Routes of a sub-application (the console) are
    left to its own middleware, which does the same."""
    expected = f"Bearer {token}".encode() if token else None
    operator = actor_for(OPERATOR, Via.API, service_token=token)  # the same for every request: once

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.apps[-1] is not request.app and request.match_info.apps[-1][CHECKS_ITS_OWN]:
            return await handler(request)  # the console: its middleware runs the same check
        public = scope_of(request).access is Access.PUBLIC
        principal = None if public else await api_principal(request, expected)
        await resolve(request, principal)
        # Every event the request writes names who authenticated it (public routes act for no one).
        if principal is None:
            actor = None
        elif principal is OPERATOR:
            actor = operator
        else:
            actor = actor_for(principal, Via.API, service_token=token)
        with acting_as(actor):
            return await handler(request)

    return authenticate
