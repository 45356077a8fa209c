"""Alembic environment: async (asyncpg), our tables only; Procrastinate's objects are its own."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import load_settings
from app.store.database import with_driver
from app.store.schema import metadata

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    settings = load_settings()
    if settings.database_url is None:
        raise SystemExit(
            "set TASKSGODZILLA_DATABASE_URL, or run `tasksgodzilla migrate` for the embedded server"
        )
    return with_driver(settings.database_url.get_secret_value(), "asyncpg")


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (name or "").startswith("procrastinate_")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_ours,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "offline (--sql) migrations are not supported: the Procrastinate schema needs a live server"
    )
asyncio.run(_run_async())
