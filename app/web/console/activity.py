"""Console: recent events across projects, and the live stream the pages subscribe to (SSE).

The stream sends two messages per new event: `feed`, the event's row as HTML (appended to a page's
feed), and `change`, on which a page re-fetches its live fragments (badges, timelines). The rows are
rendered by the same template as the page's first rendering.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from app.domain.events import EVENT_KINDS
from app.domain.scopes import parse_id, tenant
from app.errors import InvalidInputError
from app.store import events, projects
from app.store.events import Placed
from app.web.api.models import decode_event_cursor, encode_event_cursor
from app.web.console.base import params, render, services, stream_start
from app.web.keys import LIVE
from app.web.live import Interest
from app.web.live_stream import message, send_batches
from app.web.scope import scoped

routes = web.RouteTableDef()
PAGE = 100


@routes.get("/activity")
@scoped(tenant(narrows=True))
async def activity(request: web.Request) -> web.Response:
    """Recent events the caller reaches; `project_id` (checked by the scope check) narrows further."""
    given = params(request)
    within = given.narrowing()
    project_id = given.ids.get("project_id", within.get("project_id"))
    before_id = _event_id(given.query.get("before"))
    prefix = given.query.get("type", "")[:60]
    after = await stream_start(request)
    async with services(request).database.read() as conn:
        before = await events.position_of(conn, before_id) if before_id is not None else None
        items = await events.recent(
            conn,
            project_id=project_id,
            organisation_id=within.get("organisation_id"),
            type_prefix=prefix or None,
            before=before,
            limit=PAGE,
        )
        # A project's sign-in has nothing to choose between.
        choices = [] if "project_id" in within else await projects.list_page(conn, limit=200, **within)
    return render(
        request,
        "console/activity.html",
        feed=items,
        after=after,
        project_id=project_id,
        type_prefix=prefix,
        projects=choices,
        kinds=sorted({name.split(".")[0] + "." for name, kind in EVENT_KINDS.items() if not kind.audit_only}),
        older=items[-1].id if len(items) == PAGE else None,
    )


def _event_id(raw: str | None) -> int | None:
    """The `before` event id of an older page (none when blank)."""
    if not raw:
        return None
    value = parse_id(raw)
    if value is None:
        raise InvalidInputError("before: not an event id", field="before")
    return value


@routes.get("/stream")
@scoped(tenant(narrows=True))
async def stream(request: web.Request) -> web.StreamResponse:
    """New events the caller reaches, of the page's subject (`project_id`, `protocol_id`, `step_id`:
    each checked by the scope check), as `feed` rows and `change` signals."""
    checked = params(request)
    within = checked.narrowing()
    resumed = request.headers.get("Last-Event-ID")  # the browser reconnecting after a drop
    if resumed:
        given = decode_event_cursor(resumed, field="Last-Event-ID")
    else:
        given = decode_event_cursor(checked.query.get("after"), field="after")
    prefix = checked.query.get("type", "")[:60] or None
    async with services(request).database.read() as conn:
        after = await events.start_at(conn, given, from_now=True)
    interest = Interest(
        organisation_id=within.get("organisation_id"),
        project_id=checked.ids.get("project_id", within.get("project_id")),
        protocol_run_id=checked.ids.get("protocol_id"),
        step_run_id=checked.ids.get("step_id"),
        type_prefix=prefix,
    )
    environment = aiohttp_jinja2.get_env(request.app)

    def row(placed: Placed) -> bytes:
        """The event's feed row (the page's own template) and the `change` signal after it."""
        html = environment.get_template("console/_event_row.html").render(event=placed.event)
        feed = message(html, id=encode_event_cursor(placed.position), event="feed")
        return feed + message(placed.event.event_type, event="change")

    batches = request.config_dict[LIVE].follow(interest, after=after)
    return await send_batches(request, batches, lambda entry: entry.frame("console", row))
