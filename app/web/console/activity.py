"""Console: recent events across projects, and the live stream the pages subscribe to (SSE).

The stream sends two messages per new event: `feed`, the event's row as HTML (appended to a page's
feed), and `change`, on which a page re-fetches its live fragments (badges, timelines). The rows are
rendered by the same template as the page's first rendering.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from app.domain.events import EVENT_KINDS
from app.errors import PermissionDeniedError
from app.store import events, projects, protocols, steps
from app.web.api.models import decode_event_cursor, encode_event_cursor
from app.web.console.base import render, services, session, stream_start
from app.web.keys import CHANGES
from app.web.live import event_batches

routes = web.RouteTableDef()
PAGE = 100


@routes.get("/activity")
async def activity(request: web.Request) -> web.Response:
    scope = _ids(request, "project_id", "before")
    scoped = session(request).project_id
    project_id = scoped if scoped is not None else scope.get("project_id")
    prefix = request.query.get("type", "")[:60]
    after = await stream_start(request)
    async with services(request).database.read() as conn:
        before = await events.position_of(conn, scope["before"]) if "before" in scope else None
        items = await events.recent(
            conn, project_id=project_id, type_prefix=prefix or None, before=before, limit=PAGE
        )
        choices = await projects.list_page(conn, limit=200) if scoped is None else []
    return render(
        request,
        "console/activity.html",
        feed=items,
        after=after,
        project_id=project_id,
        type_prefix=prefix,
        projects=choices,
        kinds=sorted({name.split(".")[0] + "." for name in EVENT_KINDS}),
        older=items[-1].id if len(items) == PAGE else None,
    )


def _ids(request: web.Request, *names: str) -> dict[str, int]:
    found = {}
    for name in names:
        raw = request.query.get(name, "")
        if raw.isascii() and raw.isdigit() and 0 < len(raw) < 19:
            found[name] = int(raw)
    return found


@routes.get("/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    scope = await _stream_scope(request)
    resumed = request.headers.get("Last-Event-ID")  # the browser reconnecting after a drop
    if resumed:
        given = decode_event_cursor(resumed, field="Last-Event-ID")
    else:
        given = decode_event_cursor(request.query.get("after"), field="after")
    prefix = request.query.get("type", "")[:60] or None
    database = services(request).database
    async with database.read() as conn:
        after = await events.start_at(conn, given, from_now=True)
    async with sse_response(request) as sse:
        with contextlib.suppress(ConnectionResetError):
            async for batch in event_batches(
                database,
                request.config_dict.get(CHANGES),
                after=after,
                project_id=scope.get("project_id"),
                protocol_run_id=scope.get("protocol_run_id"),
                step_run_id=scope.get("step_run_id"),
            ):
                if not sse.is_connected() or request.transport is None or request.transport.is_closing():
                    break
                for placed in batch:
                    event = placed.event
                    if prefix and not event.event_type.startswith(prefix):
                        continue
                    row = aiohttp_jinja2.render_string("console/_event_row.html", request, {"event": event})
                    await sse.send(row, event="feed", id=encode_event_cursor(placed.position))
                    await sse.send(event.event_type, event="change")
    return sse


async def _stream_scope(request: web.Request) -> dict[str, int]:
    """The stream's subject; a project-token session sees its own project only."""
    given = _ids(request, "project_id", "protocol_id", "step_id")
    scope = {
        "project_id": given.get("project_id"),
        "protocol_run_id": given.get("protocol_id"),
        "step_run_id": given.get("step_id"),
    }
    allowed = session(request).project_id
    if allowed is not None:
        async with services(request).database.read() as conn:
            owners: list[Any] = [scope["project_id"]]
            if scope["protocol_run_id"]:
                owners.append(await protocols.project_of(conn, scope["protocol_run_id"]))
            if scope["step_run_id"]:
                owners.append(await steps.project_of(conn, scope["step_run_id"]))
        if any(owner is not None and owner != allowed for owner in owners):
            raise PermissionDeniedError("this sign-in is for another project")
        scope["project_id"] = allowed
    return {key: value for key, value in scope.items() if value is not None}
