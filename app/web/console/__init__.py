"""The web console: server-rendered pages (Jinja2) enhanced by htmx, beside the JSON API in one process.

Pages read through the same view functions and services as the API (app/web/views.py,
app/services), so the two never disagree. Mounted at /console/ as a sub-application with its own
middleware (app/web/console/guard.py): sessions, CSRF, the scope check every route declares
(app/web/scope.py, as for the API), HTML errors.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from app.config import Settings
from app.domain.scopes import PUBLIC
from app.domain.throttle import FailedSignIns
from app.store.migrate import resource_dir
from app.web.console import activity, login, policy, projects, protocols, steps, usage
from app.web.console.base import CODEC, PREFIX, SIGN_INS
from app.web.console.format import FILTERS, markdown
from app.web.console.guard import console_guard
from app.web.console.session import SessionCodec
from app.web.scope import CHECKS_ITS_OWN, scoped


def console_app(settings: Settings) -> web.Application:
    """The console as a sub-application, to mount at /console/."""
    console = web.Application(middlewares=[console_guard])
    console[CODEC] = SessionCodec(settings)
    console[SIGN_INS] = FailedSignIns(settings.login_failures_per_minute)
    console[CHECKS_ITS_OWN] = True  # console_guard runs the scope check with the session's caller
    environment = aiohttp_jinja2.setup(
        console,
        loader=jinja2.FileSystemLoader(resource_dir("templates")),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(FILTERS)
    environment.filters.update(usage.FILTERS)
    environment.filters["markdown"] = markdown
    for module in (login, projects, policy, protocols, steps, activity, usage):
        console.router.add_routes(module.routes)
    return console


def install_console(app: web.Application, settings: Settings) -> None:
    """Mount the console; `/` and `/console` lead to it."""

    @scoped(PUBLIC)
    async def home(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": PREFIX + "/"})

    @scoped(PUBLIC)
    async def bare(request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"Location": PREFIX + "/"})

    app.router.add_get("/", home)
    # Before the sub-application, which would take `/console` for its own and answer 404.
    app.router.add_get(PREFIX, bare)
    app.add_subapp(PREFIX + "/", console_app(settings))
