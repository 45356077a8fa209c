"""What every console handler shares: the services, the session, rendering, redirects, and the
request's parameters as the scope check read them (never read again from the request)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app.domain.throttle import FailedSignIns
from app.errors import InvalidInputError
from app.services.context import Services
from app.store import events
from app.web.api.models import encode_event_cursor
from app.web.console.session import CSRF_FIELD, CSRF_HEADER, Session, SessionCodec
from app.web.keys import SERVICES
from app.web.scope import Resolved, resolved

CODEC = web.AppKey("console_codec", SessionCodec)
SIGN_INS = web.AppKey("console_failed_sign_ins", FailedSignIns)
SESSION = web.RequestKey("console_session", Session)
PREFIX = "/console"


def services(request: web.Request) -> Services:
    # config_dict: the console is a sub-application; the services live on the main one.
    return request.config_dict[SERVICES]


def session(request: web.Request) -> Session:
    return request[SESSION]


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A template with what every page needs: the session, its CSRF token, whether the console is open."""
    current: Session = request[SESSION]
    context.update(
        session=current,
        csrf_field=CSRF_FIELD,
        csrf_header=CSRF_HEADER,
        open_console=request.app[CODEC].open,
        path=request.path_qs,
    )
    return aiohttp_jinja2.render_template(template, request, context, status=status)


def redirect(location: str) -> web.Response:
    """303 See Other: after a form POST the browser fetches `location` with GET."""
    return web.Response(status=303, headers={"Location": location})


def done(request: web.Request, location: str, message: str = "") -> web.Response:
    """An action succeeded: htmx gets a small notice and a `refresh` trigger; a plain form, a redirect."""
    if is_htmx(request):
        response = render(request, "console/_notice.html", message=message, error=False)
        response.headers["HX-Trigger"] = "refresh"
        return response
    return redirect(location)


def entity_id(request: web.Request, name: str) -> int:
    """The id the route's path names (`project_id`, ...), as the scope check read and checked it."""
    return resolved(request).ids[name]


def params(request: web.Request) -> Resolved:
    """The path and query parameters, as the scope check read them."""
    return resolved(request)


async def form(request: web.Request) -> dict[str, str]:
    """The posted fields, text only, blank ones dropped (so the API models' defaults apply); a field
    given twice is refused (no console form has one that repeats)."""
    data = await request.post()
    for key in data:
        if len(data.getall(key)) > 1:
            raise InvalidInputError(f"the form field {key[:60]!r} is given twice", field=key[:60])
    return {key: value.strip() for key, value in data.items() if isinstance(value, str) and value.strip()}


def form_version(values: dict[str, str]) -> int | None:
    """The version the page showed (a compare-and-set, like If-Match); None when the form has none."""
    raw = values.get("version", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 18 else None


async def stream_start(request: web.Request) -> str:
    """The cursor of "now" (`events.horizon`), read before a page's data: its stream resumes there, so
    nothing that happens while the page loads is missed (an event the page shows may come again)."""
    async with services(request).database.read() as conn:
        return encode_event_cursor(await events.horizon(conn))
