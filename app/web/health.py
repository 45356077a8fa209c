"""`GET /health`: is the database reachable and migrated to head, and can each engine start?

The database alone decides the answer's status (200 or 503): without it nothing works. Engines are
reported, not judged: an engine no stage uses may well be missing. Each shows `status` (`ok`,
`error`, `unknown`), its `version` or `error`, the `setting` that chooses its executable, and the
stages that use it by default. Version probes are cached for a minute (see app/engines/probe.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from app import __version__
from app.errors import UnavailableError
from app.services.engine_checks import engine_report, stages_by_engine
from app.store.migrate import current_revision, head_revision
from app.web.keys import DATABASE, SERVICES

HEALTH_TIMEOUT_SECONDS = 3.0


async def health(request: web.Request) -> web.Response:
    """200 when the database answers and is migrated to head; 503 with the reason otherwise."""
    (status, body), engines = await asyncio.gather(_database(request), _engines(request))
    body["engines"] = engines
    return web.json_response(body, status=status)


async def _database(request: web.Request) -> tuple[int, dict[str, Any]]:
    database = request.app[DATABASE]
    head = head_revision()
    body: dict[str, Any] = {"status": "ok", "version": __version__, "database": "ok"}
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with database.transaction() as conn:
                current = await current_revision(conn)
    except (UnavailableError, TimeoutError, OSError):
        body.update(status="unavailable", database="unreachable")
        return 503, body
    body["migrations"] = {"current": current, "head": head}
    if current != head:
        body["status"] = "migrations_pending"
        return 503, body
    return 200, body


async def _engines(request: web.Request) -> dict[str, dict[str, Any]]:
    svc = request.app[SERVICES]
    used = await stages_by_engine(svc)
    report = await engine_report(svc, wait_seconds=HEALTH_TIMEOUT_SECONDS)
    return {name: {**check.as_dict(), "default_for": used.get(name, [])} for name, check in report.items()}
