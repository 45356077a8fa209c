"""Sending the hub's events to one client as Server-Sent Events.

Each event's message is built once (`Entry.frame`) and the messages of a batch go out in one write;
the response itself (headers, the 15 s ping that keeps proxies from closing the connection) is
aiohttp_sse's. A client that stops reading is cut off after `SEND_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from app.web.live import Entry

SEND_TIMEOUT = 120.0  # as aiohttp_sse's own sends
_LINES = re.compile(r"\r\n|\r|\n")
_SEP = EventSourceResponse.DEFAULT_SEPARATOR


def message(data: str, *, id: str | None = None, event: str | None = None) -> bytes:
    """One SSE message, as `EventSourceResponse.send` writes it (data split into lines)."""
    fields = []
    if id is not None:
        fields.append(f"id: {id}{_SEP}")
    if event is not None:
        fields.append(f"event: {event}{_SEP}")
    fields.extend(f"data: {line}{_SEP}" for line in _LINES.split(data))
    fields.append(_SEP)
    return "".join(fields).encode("utf-8")


async def send_batches(
    request: web.Request,
    batches: AsyncGenerator[list[Entry]],
    messages: Callable[[Entry], bytes],
) -> EventSourceResponse:
    """Answer `request` with an SSE stream of `batches`, each entry as `messages` makes it, until the
    client goes."""
    async with sse_response(request) as stream, aclosing(batches):
        async for batch in batches:
            if not _connected(request, stream):
                break
            if not batch:
                continue
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await stream.write(b"".join(messages(entry) for entry in batch))
            except (ConnectionResetError, TimeoutError):
                if request.transport is not None:
                    request.transport.abort()
                break
    return stream


def _connected(request: web.Request, stream: EventSourceResponse) -> bool:
    return stream.is_connected() and request.transport is not None and not request.transport.is_closing()
