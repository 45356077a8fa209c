"""Sending the hub's events to one client as Server-Sent Events.

Each event's message is built once (`Entry.frame`) and the messages of a batch go out in one write;
the response itself (headers, the 15 s ping that keeps proxies from closing the connection) is
aiohttp_sse's. A client that stops reading is cut off after `SEND_TIMEOUT` seconds (a write the
transport takes without pausing, the usual case, skips the timer).
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
            transport = request.transport
            if transport is None or transport.is_closing() or not stream.is_connected():
                break
            if not batch:
                continue
            data = b"".join(messages(entry) for entry in batch)
            try:
                if transport.get_write_buffer_size() + len(data) < transport.get_write_buffer_limits()[1]:
                    await stream.write(data)  # the transport takes it without pausing: no wait
                else:
                    async with asyncio.timeout(SEND_TIMEOUT):
                        await stream.write(data)
            except (ConnectionResetError, TimeoutError):
                transport.abort()
                break
    return stream
