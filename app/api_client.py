"""A client of the service's HTTP API, for the CLI's remote mode and the TUI: JSON in and out, errors
as `ApiError` carrying the server's envelope, pages followed by cursor, and the event stream as
Server-Sent Events that resume where they stopped after a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp

from app.errors import ERROR_TABLE, TasksGodzillaError, UnavailableError

RECONNECT_SECONDS = 1.0


@dataclass(frozen=True)
class StreamedEvent:
    """One message of the event stream: its cursor (to resume after it) and the event."""

    cursor: str
    event: dict[str, Any]


class ApiClient:
    """`async with ApiClient(base_url, token) as api: await api.get("/projects")`."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_seconds: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client as `async with ApiClient(...) as api`")
        return self._session

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request("POST", path, body=body, params=params)

    async def patch(self, path: str, body: Any = None) -> Any:
        return await self.request("PATCH", path, body=body)

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.request("DELETE", path, params=params)

    async def request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The decoded JSON answer (None for an empty one). A refusal raises the error class the server
        raised (by its envelope's code), so a remote command fails exactly as a local one would; an
        unreachable server is an UnavailableError."""
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                json=body,
                params=_query(params or {}),
                timeout=self._timeout,
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise server_error(response.status, text)
                return json.loads(text) if text else None
        except aiohttp.ClientConnectionError as exc:
            raise UnavailableError(f"cannot reach the server at {self.base_url}: {exc}") from exc

    async def pages(self, path: str, **params: Any) -> AsyncIterator[Any]:
        """Every item of a paged list, following `next_cursor` until a page comes back empty."""
        cursor = None
        while True:
            page = await self.get(path, **params, **({"cursor": cursor} if cursor else {}))
            items = page.get("items", [])
            for item in items:
                yield item
            cursor = page.get("next_cursor")
            if not items or not cursor:
                return

    async def events(self, *, after: str | None = None, **scope: Any) -> AsyncIterator[StreamedEvent]:
        """The live event stream (`GET /events/stream`) within `scope` (project_id, protocol_id,
        step_id, type), from `after` (a cursor) or from now; reconnects after a dropped connection and
        resumes after the last event it gave, so none is skipped or repeated."""
        last = after
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            try:
                async with self.session.get(
                    self.base_url + "/events/stream",
                    params=_query(scope),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total),
                ) as response:
                    if response.status >= 400:
                        raise server_error(response.status, await response.text())
                    async for message in _messages(response.content):
                        if "data" not in message:
                            continue
                        last = message.get("id") or last
                        yield StreamedEvent(last or "", json.loads(message["data"]))
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                pass  # the server went away mid-stream: wait a moment and resume after `last`
            await asyncio.sleep(RECONNECT_SECONDS)


async def _messages(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, str]]:
    """Server-Sent Events messages as their fields (data lines joined); comments (pings) skipped."""
    fields: dict[str, str] = {}
    async for raw in content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        fields[key] = f"{fields[key]}\n{value}" if key == "data" and key in fields else value


def _query(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs: None left out, lists repeated (`type=a&type=b`), booleans as true/false."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None:
                continue
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


_BY_CODE = {spec.code: cls for cls, spec in ERROR_TABLE.items()}
_BY_STATUS = {spec.http_status: cls for cls, spec in reversed(ERROR_TABLE.items())}  # the base class wins


def server_error(status: int, text: str) -> TasksGodzillaError:
    """The error a refusal stands for: the class of the envelope's code (else of the HTTP status), with
    its message and details."""
    try:
        envelope = json.loads(text)["error"]
        code, message, details = str(envelope["code"]), str(envelope["message"]), envelope.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "http_error", f"HTTP {status}: {text[:200]}", None
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, TasksGodzillaError)
    return cls(message, **(details if isinstance(details, dict) else {}))
