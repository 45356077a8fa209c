"""`Idempotency-Key` on the POSTs that create things: a retry gets the first answer, never a second copy.

The key is scoped by method, path and caller; reusing it with a different body is a 422, and a
retry that arrives while the first request is still being answered is a 409. The registry wraps the
endpoints that declare the header (app/web/api/registry.py), so no other request pays for it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.errors import ConflictError, InvalidInputError
from app.store import idempotency
from app.web.keys import SERVICES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADER = "Idempotency-Key"
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,200}")


async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer through `handler` once per Idempotency-Key; a retry gets the stored answer."""
    key = request.headers.get(HEADER)
    if key is None:
        return await handler(request)
    if not _KEY.fullmatch(key):
        raise InvalidInputError("Idempotency-Key must be 1-200 of A-Z a-z 0-9 . _ : -", field=HEADER)
    body = await request.read()
    caller = hashlib.sha256(
        (request.headers.get("Authorization", "") + request.headers.get("X-Project-Token", "")).encode()
    ).hexdigest()[:16]
    scope = f"{request.method} {request.path} {caller}"
    digest = hashlib.sha256(body).hexdigest()
    database = request.app[SERVICES].database
    async with database.transaction() as conn:
        stored = await idempotency.claim(conn, scope, key, digest)
    if stored is not None:
        return _replay(stored, digest)
    try:
        response = await handler(request)
    except BaseException:
        async with database.transaction() as conn:
            await idempotency.release(conn, scope, key)
        raise
    if isinstance(response, web.Response) and response.status < 500:
        async with database.transaction() as conn:
            await idempotency.answer(conn, scope, key, response.status, response.text or "")
    return response


def _replay(stored: idempotency.Stored, digest: str) -> web.Response:
    if stored.request_hash != digest:
        raise InvalidInputError("this Idempotency-Key was used with a different request", field=HEADER)
    if stored.status is None:
        raise ConflictError("a request with this Idempotency-Key is still being answered", field=HEADER)
    response = web.Response(text=stored.body or "", status=stored.status, content_type="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response
