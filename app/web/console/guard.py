"""The console's middleware: session in, sign-in and CSRF enforced, project scope checked, errors as HTML.

The JSON API's bearer middleware lets `/console/` through; this one decides instead. A page asked for
without a session redirects to the login form; a POST without the session's CSRF token is a 403. A
project-token session reaches only its own project's pages (others are a 403 page).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.errors import AuthenticationError, PermissionDeniedError, TasksGodzillaError, spec_for
from app.logs import current_correlation_id, get_logger
from app.store import agent_runs, projects, protocols, steps
from app.web.console.base import CODEC, SESSION, is_htmx, render, services
from app.web.console.session import Session, check_csrf, set_cookie

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = frozenset({"/console/login"})
_OWNED = re.compile(r"^/console/(projects|protocols|steps|agent_runs)/(\d{1,18})(/|$)")
_SERVICE_WIDE = frozenset({"/console/projects", "/console/projects/new"})


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    codec = request.app[CODEC]
    current = codec.loads(request.cookies.get("tg_console"))
    fresh = current is None or (current.project_id is not None and not await _token_valid(request, current))
    if fresh:
        current = Session.new(signed_in=codec.open)
    assert current is not None
    request[SESSION] = current
    try:
        response = await _checked(request, handler, current)
    except TasksGodzillaError as exc:
        response = error_page(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_page(request, TasksGodzillaError(exc.reason), status=exc.status)
    except Exception:
        log.exception("unhandled console error")
        response = error_page(request, TasksGodzillaError("internal error"), status=500)
    if fresh and SESSION in request and request[SESSION] is current:
        set_cookie(request, response, codec, current)
    return response


async def _checked(request: web.Request, handler: Handler, current: Session) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        await check_csrf(request, current)
    if not current.signed_in and request.path not in PUBLIC:
        if request.method in ("GET", "HEAD") and not is_htmx(request):
            return web.Response(status=303, headers={"Location": "/console/login"})
        raise AuthenticationError("sign in first")
    if current.project_id is not None:
        await _check_scope(request, current.project_id)
    return await handler(request)


async def _token_valid(request: web.Request, current: Session) -> bool:
    """A project-token session lasts as long as that token is the project's: rotating it signs out."""
    if not current.token_hash:
        return False
    async with services(request).database.read() as conn:
        return await projects.id_for_token_hash(conn, current.token_hash) == current.project_id


async def _check_scope(request: web.Request, allowed: int) -> None:
    if request.path in _SERVICE_WIDE:
        raise PermissionDeniedError("this sign-in is for one project only")
    match = _OWNED.match(request.path)
    if match is None:
        return  # the home page, activity and the stream narrow themselves to the session's project
    kind, entity = match.group(1), int(match.group(2))
    if kind == "projects":
        owner: int | None = entity
    else:
        lookup = {
            "protocols": protocols.project_of,
            "steps": steps.project_of,
            "agent_runs": agent_runs.project_of,
        }
        async with services(request).database.read() as conn:
            owner = await lookup[kind](conn, entity)
    if owner is not None and owner != allowed:
        raise PermissionDeniedError("this sign-in is for another project")


def error_page(request: web.Request, exc: TasksGodzillaError, *, status: int | None = None) -> web.Response:
    """The error as HTML: a fragment for htmx (swapped into the page's error area), else a page."""
    code = status or spec_for(exc).http_status
    template = "console/_notice.html" if is_htmx(request) else "console/error.html"
    return render(
        request,
        template,
        status=code,
        message=exc.message,
        error=True,
        code=code,
        correlation_id=current_correlation_id(),
    )
