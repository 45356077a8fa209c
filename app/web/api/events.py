"""Events: the durable log, paged by cursor, filtered by type, for the whole service or one subject.

Pages and the stream hand events out in transaction order, and only once every older transaction
has finished (app/store/events.py): a cursor never passes an event that could still commit before it.
"""

from __future__ import annotations

from aiohttp import web

from app.domain.records import Event
from app.domain.scopes import tenant
from app.store import events as store
from app.store import projects, protocols, steps
from app.web.api.common import services
from app.web.api.models import EventQuery, Page, StreamQuery, decode_event_cursor, encode_event_cursor
from app.web.api.registry import Api
from app.web.keys import LIVE
from app.web.live import Interest
from app.web.live_stream import message, send_batches
from app.web.scope import resolved

api = Api()


async def settled_batch(
    request: web.Request,
    start: store.Position | int | None,
    event_types: list[str] | None,
    limit: int,
    correlation_id: str | None = None,
    /,
    **scope: int,
) -> store.Batch:
    """Events after `start` of the resource named in `scope` (a 404 when it does not exist), oldest
    first: the event pages' and the findings pages' one read."""
    async with services(request).database.read() as conn:
        if "project_id" in scope:
            await projects.get(conn, scope["project_id"])
        if "protocol_run_id" in scope:
            await protocols.get(conn, scope["protocol_run_id"])
        if "step_run_id" in scope:
            await steps.get(conn, scope["step_run_id"])
        after = await store.start_at(conn, start, from_now=False)
        return await store.read_after(
            conn, after, correlation_id, event_types=event_types, limit=limit, **scope
        )


async def _page(request: web.Request, query: EventQuery, **scope: int) -> dict:
    batch = await settled_batch(
        request, query.start(), query.type or None, query.limit, query.correlation_id, **scope
    )
    # Oldest first; the cursor of the last item always continues (new events may come).
    return {
        "items": [placed.event for placed in batch.settled],
        "next_cursor": encode_event_cursor(batch.end) if batch.end else query.cursor,
    }


@api.route(
    "GET",
    "/events",
    summary="All events the caller reaches, oldest first",
    tag="events",
    scope=tenant(narrows=True),
    query=EventQuery,
    response=Page[Event],
)
async def all_events(request: web.Request, query: EventQuery) -> dict:
    return await _page(request, query, **resolved(request).narrowing())


@api.route(
    "GET",
    "/projects/{project_id}/events",
    summary="A project's events",
    tag="events",
    scope=tenant(),
    query=EventQuery,
    response=Page[Event],
    errors=(404,),
)
async def project_events(request: web.Request, project_id: int, query: EventQuery) -> dict:
    return await _page(request, query, project_id=project_id)


@api.route(
    "GET",
    "/protocols/{protocol_id}/events",
    summary="A protocol run's events",
    tag="events",
    scope=tenant(),
    query=EventQuery,
    response=Page[Event],
    errors=(404,),
)
async def protocol_events(request: web.Request, protocol_id: int, query: EventQuery) -> dict:
    return await _page(request, query, protocol_run_id=protocol_id)


@api.route(
    "GET",
    "/steps/{step_id}/events",
    summary="A step run's events",
    tag="events",
    scope=tenant(),
    query=EventQuery,
    response=Page[Event],
    errors=(404,),
)
async def step_events(request: web.Request, step_id: int, query: EventQuery) -> dict:
    return await _page(request, query, step_run_id=step_id)


@api.route(
    "GET",
    "/events/stream",
    summary="New events the caller reaches as Server-Sent Events (resumable with Last-Event-ID)",
    headers=("Last-Event-ID",),
    tag="events",
    scope=tenant(narrows=True),
    query=StreamQuery,
    response=Event,
    stream=True,
)
async def stream_events(request: web.Request, query: StreamQuery) -> web.StreamResponse:
    checked = resolved(request)  # the subjects as the scope check saw them, and the caller's reach
    within = checked.narrowing()
    resumed = request.headers.get("Last-Event-ID")
    given = (
        decode_event_cursor(resumed, field="Last-Event-ID")
        if resumed
        else decode_event_cursor(query.after, field="after")
    )
    async with services(
        request
    ).database.read() as conn:  # before answering: the stream covers all that follows
        after = await store.start_at(conn, given, from_now=True)
    interest = Interest(
        organisation_id=within.get("organisation_id"),
        project_id=checked.ids.get("project_id", within.get("project_id")),
        protocol_run_id=checked.ids.get("protocol_id"),
        step_run_id=checked.ids.get("step_id"),
        event_types=frozenset(query.type or ()),
    )
    batches = request.app[LIVE].follow(interest, after=after)
    return await send_batches(request, batches, lambda entry: entry.frame("api", _message))


def _message(placed: store.Placed) -> bytes:
    """An event as the API stream sends it: its JSON, named by its type, with its cursor as id."""
    event = placed.event
    return message(event.model_dump_json(), id=encode_event_cursor(placed.position), event=event.event_type)
