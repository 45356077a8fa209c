"""What every handler needs: the services, and the version a write expects (If-Match)."""

from __future__ import annotations

from aiohttp import web

from app.errors import InvalidInputError
from app.services.context import Services
from app.web.keys import SERVICES


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def if_match(request: web.Request) -> int | None:
    """The version named by If-Match (an ETag we gave out), or None when the header is absent."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    tag = raw.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 18:
        raise InvalidInputError("If-Match must be an ETag this API gave out", field="If-Match")
    return int(tag)
