"""Events: the durable log, paged by cursor, filtered by type, for the whole service or one subject."""

from __future__ import annotations

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from app.domain.records import Event
from app.store import events as store
from app.store import projects, protocols, steps
from app.web.api.common import services
from app.web.api.models import EventQuery, Page, StreamQuery, encode_cursor
from app.web.api.registry import Api
from app.web.keys import CHANGES
from app.web.live import event_batches

api = Api()


async def _page(request: web.Request, query: EventQuery, **scope: int) -> dict:
    async with services(request).database.read() as conn:
        if "project_id" in scope:
            await projects.get(conn, scope["project_id"])
        if "protocol_run_id" in scope:
            await protocols.get(conn, scope["protocol_run_id"])
        if "step_run_id" in scope:
            await steps.get(conn, scope["step_run_id"])
        items = await store.list_page(
            conn, event_types=query.type or None, after_id=query.position(), limit=query.limit, **scope
        )
    # Oldest first; the cursor of the last item always continues (new events may come).
    return {"items": items, "next_cursor": encode_cursor(items[-1].id) if items else query.cursor}


@api.route(
    "GET", "/events", summary="All events, oldest first", tag="events", query=EventQuery, response=Page[Event]
)
async def all_events(request: web.Request, query: EventQuery) -> dict:
    return await _page(request, query)


@api.route(
    "GET",
    "/projects/{project_id}/events",
    summary="A project's events",
    tag="events",
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
    query=EventQuery,
    response=Page[Event],
    errors=(404,),
)
async def step_events(request: web.Request, step_id: int, query: EventQuery) -> dict:
    return await _page(request, query, step_run_id=step_id)


@api.route(
    "GET",
    "/events/stream",
    summary="New events as Server-Sent Events (resumable with Last-Event-ID)",
    tag="events",
    query=StreamQuery,
    response=Event,
    stream=True,
)
async def stream_events(request: web.Request, query: StreamQuery) -> web.StreamResponse:
    async with sse_response(request) as stream:
        batches = event_batches(
            services(request).database,
            request.app.get(CHANGES),
            after_id=_resume_point(stream.last_event_id, query.after),
            event_types=query.type,
            project_id=query.project_id,
            protocol_run_id=query.protocol_id,
            step_run_id=query.step_id,
        )
        async for batch in batches:
            if not _connected(request, stream):
                break
            for event in batch:
                await stream.send(event.model_dump_json(), id=str(event.id), event=event.event_type)
    return stream


def _connected(request: web.Request, stream: EventSourceResponse) -> bool:
    return stream.is_connected() and request.transport is not None and not request.transport.is_closing()


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) < 19:
        return int(last_event_id)
    return after
