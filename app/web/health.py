"""`GET /health`: is the database reachable, and is its schema at the code's migration head?"""

from __future__ import annotations

import asyncio

from aiohttp import web

from app import __version__
from app.errors import UnavailableError
from app.store.migrate import current_revision, head_revision
from app.web.keys import DATABASE

HEALTH_TIMEOUT_SECONDS = 3.0


async def health(request: web.Request) -> web.Response:
    """200 when the database answers and is migrated to head; 503 with the reason otherwise."""
    database = request.app[DATABASE]
    head = head_revision()
    body: dict = {"status": "ok", "version": __version__, "database": "ok"}
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with database.transaction() as conn:
                current = await current_revision(conn)
    except (UnavailableError, TimeoutError, OSError):
        body.update(status="unavailable", database="unreachable")
        return web.json_response(body, status=503)
    body["migrations"] = {"current": current, "head": head}
    if current != head:
        body["status"] = "migrations_pending"
        return web.json_response(body, status=503)
    return web.json_response(body)
