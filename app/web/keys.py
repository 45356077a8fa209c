"""Typed keys for what the application holds: built once at start-up, handed to handlers."""

from __future__ import annotations

from aiohttp import web

from app.config import Settings
from app.services.context import Services
from app.store.changes import ChangeFeed
from app.store.database import Database
from app.web.live import LiveHub

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
SERVICES = web.AppKey("services", Services)
CHANGES = web.AppKey("changes", ChangeFeed)
LIVE = web.AppKey("live", LiveHub)  # the SSE streams' one reader of new events
