"""What every handler needs: the services, the version a write expects (If-Match), and errors that
name no other tenant's rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from app.domain.scopes import Level
from app.errors import ConflictError, InvalidInputError
from app.services.context import Services
from app.web.keys import SERVICES
from app.web.scope import resolved


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


@contextmanager
def others_unnamed(request: web.Request) -> Iterator[None]:
    """A conflict with another project (same folder, same remote) told to a tenant without that
    project's name or id: it may belong to another organisation. The operator is told everything."""
    try:
        yield
    except ConflictError as exc:
        caller = resolved(request).principal
        if caller is None or caller.level is Level.OPERATOR or "project_id" not in exc.details:
            raise
        field = exc.details.get("field")
        raise ConflictError("another project uses this repository already", field=field) from None
