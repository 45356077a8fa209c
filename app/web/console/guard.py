"""The console's middleware: session in, sign-in and CSRF enforced, the scope check, errors as HTML.

The JSON API's middleware leaves the console's routes to this one. A page asked for without a session
redirects to the login form; a POST without the session's CSRF token is a 403. Then the same scope
check as the API's (app/web/scope.py) runs with the session's caller: the operator, an organisation
(its projects only) or a project (that project only); out of reach is a 403 page. The handler then
acts for the credential that signed the session in (app/acting.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from app.acting import acting_as
from app.domain.actors import Via, actor_for
from app.domain.scopes import Access, Level
from app.errors import AuthenticationError, TasksGodzillaError, spec_for
from app.logs import current_correlation_id, get_logger
from app.store import tenancy
from app.web.console.base import CODEC, SESSION, is_htmx, render, services
from app.web.console.session import Session, check_csrf, set_cookie
from app.web.scope import resolve, scope_of

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    codec = request.app[CODEC]
    current = codec.loads(request.cookies.get("tg_console"))
    fresh = current is None or (current.by_token and not await _token_valid(request, current))
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
    public = scope_of(request).access is Access.PUBLIC
    if not current.signed_in and not public:
        if request.method in ("GET", "HEAD") and not is_htmx(request):
            return web.Response(status=303, headers={"Location": "/console/login"})
        raise AuthenticationError("sign in first")
    principal = current.principal()
    await resolve(request, principal)
    service_token = request.app[CODEC].api_token
    actor = None if principal is None else actor_for(principal, Via.CONSOLE, service_token=service_token)
    with acting_as(actor):  # every event the request writes names who signed this session in
        return await handler(request)


async def _token_valid(request: web.Request, current: Session) -> bool:
    """A token session lasts as long as that token is its project's (organisation's): replacing the
    token signs out."""
    if not current.token_hash:
        return False
    found = await tenancy.principal_for_token_hash(services(request).database, current.token_hash)
    if found is None:
        return False
    if found.level is Level.PROJECT:
        return found.project_id == current.project_id
    return current.project_id is None and found.organisation_id == current.organisation_id


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
