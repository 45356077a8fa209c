"""The aiohttp application factory: settings and resources in, a ready application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from app.config import Settings
from app.store.database import Database
from app.web.health import health
from app.web.keys import DATABASE, SETTINGS
from app.web.middlewares import auth_middleware, correlation_middleware, error_middleware

PUBLIC_PATHS = frozenset({"/health"})


def create_app(settings: Settings, database_url: str) -> web.Application:
    """Build the application; the database pool opens on start-up and closes on clean-up."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = web.Application(
        middlewares=[correlation_middleware, error_middleware, auth_middleware(token, PUBLIC_PATHS)],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        database = Database(database_url, pool_size=settings.db_pool_size)
        app[DATABASE] = database
        yield
        await database.dispose()

    app.cleanup_ctx.append(database_ctx)
    app.router.add_get("/health", health)
    return app
