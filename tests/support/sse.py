"""Reading Server-Sent Events from an aiohttp client response, one message at a time."""

from __future__ import annotations

import asyncio

DEADLINE = 30.0  # generous: a loaded machine may be slow, and a lost event never comes


async def next_sse(response) -> dict[str, str]:
    """The next message's fields (`event`, `data`, `id`; data lines joined), skipping pings;
    TimeoutError if none comes within DEADLINE."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(DEADLINE):  # for the message: pings alone must not keep it waiting
        while True:
            line = (await response.content.readline()).decode().rstrip("\r\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                continue  # a ping
            key, _, value = line.partition(": ")
            fields[key] = f"{fields[key]}\n{value}" if key == "data" and key in fields else value
