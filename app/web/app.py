"""The aiohttp application factory: settings and resources in, a ready application out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from app.config import Settings
from app.domain.scopes import PUBLIC, SERVICE
from app.jobs.runtime import open_runtime, start_worker, stop_worker
from app.store.changes import ChangeFeed
from app.tracing import Tracing
from app.web import trigger_hook, webhooks
from app.web.api import (
    audit,
    budgets,
    events,
    findings,
    notifications,
    organisations,
    policy,
    projects,
    protocols,
    runs,
    triggers,
    usage,
)
from app.web.api.openapi import build_spec
from app.web.api.registry import Endpoint
from app.web.auth import authentication
from app.web.console import install_console
from app.web.health import health
from app.web.keys import CHANGES, DATABASE, LIVE, SERVICES, SETTINGS
from app.web.live import LiveHub
from app.web.metrics import metrics_page
from app.web.middlewares import request_middleware
from app.web.scope import declare_resource, scoped, seal
from app.web.telemetry import HTTP_LATENCY, latency_histogram, telemetry_middleware

STATIC = Path(__file__).resolve().parent / "static"


def install_api(app: web.Application) -> list[Endpoint]:
    """Every JSON endpoint, routed; returns their declarations (for OpenAPI)."""
    endpoints = []
    for module in (
        organisations,
        projects,
        policy,
        protocols,
        events,
        audit,
        runs,
        findings,
        budgets,
        usage,
        notifications,
        triggers,
    ):
        module.api.install(app)
        endpoints += module.api.endpoints
    return endpoints


def create_app(
    settings: Settings,
    database_url: str,
    *,
    environ: Mapping[str, str] | None = None,
    tracing: Tracing | None = None,
) -> web.Application:
    """Build the application; services (and, unless disabled, a job worker) start with it and stop with it.
    `tracing`: where spans go; None, as the settings and `environ` say (app.services.context).

    Every route declares its scope (app/web/scope.py): start-up fails if one does not."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = web.Application(
        middlewares=[
            telemetry_middleware,
            request_middleware,
            authentication(token),
        ],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    app[HTTP_LATENCY] = latency_histogram()

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        runtime = open_runtime(settings, database_url, environ=environ, tracing=tracing)
        async with runtime as (job_app, services):
            app[SERVICES] = services
            app[DATABASE] = services.database
            feed = app[CHANGES] = ChangeFeed(database_url)
            await feed.start()
            live = app[LIVE] = LiveHub(services.database, feed)
            worker = start_worker(job_app, services) if settings.run_worker else None
            try:
                yield
            finally:
                if worker is not None:
                    await stop_worker(worker)
                await live.stop()
                await feed.stop()

    app.cleanup_ctx.append(runtime_ctx)
    # Before the runtime opens (aiohttp starts the cleanup contexts first): a start refused for a
    # route without a scope leaves no pool, feed or task running.
    app.on_startup.insert(0, seal)
    app.router.add_get("/health", scoped(PUBLIC)(health))
    app.router.add_get("/metrics", scoped(SERVICE)(metrics_page))
    webhooks.install(app)
    trigger_hook.install(app)
    endpoints = install_api(app)
    spec = build_spec(endpoints, secured=token is not None)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(spec)

    app.router.add_get("/openapi.json", scoped(PUBLIC)(openapi))
    app.router.add_get("/docs", scoped(PUBLIC)(docs))
    declare_resource(app.router.add_static("/static/", STATIC, follow_symlinks=False), PUBLIC)
    install_console(app, settings)
    return app


async def docs(request: web.Request) -> web.FileResponse:
    """The API documentation page (Swagger UI, vendored under app/web/static)."""
    return web.FileResponse(STATIC / "docs.html")
