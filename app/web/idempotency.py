"""`Idempotency-Key` on the POSTs that create things: a retry gets what the first request created.

The key is scoped by method, path and caller (the operator, an organisation or a project), and handed
to the creating service (`claim_of`), which stores it in the transaction that creates the resource
(app/store/idempotency.py). So a request that fails, or a server that dies, before that commit
leaves the key free, and once it has committed a retry finds the resource instead of making
another: it is answered as the first request was, with the resource as it is now, and
`Idempotent-Replayed: true`. The key used with a different body is a 422; a retry arriving while
the first request's transaction is still open is a 409 (ask again). The registry wraps the
endpoints that declare the header (app/web/api/registry.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.errors import InvalidInputError
from app.store.idempotency import HEADER, Claim
from app.web.scope import RESOLVED

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,200}")
# The user-info of any URL in a body (`https://user:token@host/…`): a credential, kept out of the hash.
_USERINFO = re.compile(rb"(?<=://)[^/@\s\"'?#]*@")
_CLAIM = web.RequestKey("idempotency_claim", Claim)


async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Offer the request's Idempotency-Key (if any) to its handler's service; mark a replay."""
    key = request.headers.get(HEADER)
    if key is None:
        return await handler(request)
    if not _KEY.fullmatch(key):
        raise InvalidInputError("Idempotency-Key must be 1-200 of A-Z a-z 0-9 . _ : -", field=HEADER)
    body = await request.read()
    # Keys are per caller: two tenants using the same key never see each other's resources.
    principal = request[RESOLVED].principal
    who = (
        ""
        if principal is None
        else f"{principal.level.name}:{principal.organisation_id}:{principal.project_id}"
    )
    caller = hashlib.sha256(who.encode()).hexdigest()[:16]
    offered = Claim(f"{request.method} {request.path} {caller}", key, body_fingerprint(body))
    request[_CLAIM] = offered
    response = await handler(request)
    if offered.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def body_fingerprint(body: bytes) -> str:
    """What tells two bodies apart for a key: the SHA-256 of the body with every URL's user-info cut
    out, so that no hash of a credential is stored (a short token could be guessed back from one).
    Two bodies that differ only in a URL's credential are one request."""
    return hashlib.sha256(_USERINFO.sub(b"@", body)).hexdigest()


def claim_of(request: web.Request) -> Claim | None:
    """The request's Idempotency-Key, for the service that creates its resource (None without one)."""
    return request.get(_CLAIM)
