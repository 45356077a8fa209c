"""The database handle: one async engine per process, transactions, and driver errors translated.

Connection failures become `UnavailableError` here, at the boundary, so callers never see a driver
exception. A pooled connection the server has closed (a restart, `pg_terminate_backend`) is replaced
when it is checked out, so the first transaction after such an event does not fail on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from app.errors import UnavailableError


def with_driver(url: str, driver: str | None) -> str:
    """The same PostgreSQL URL for another driver: `asyncpg` (SQLAlchemy), `psycopg`, or None (libpq)."""
    parts = urlsplit(url)
    scheme = "postgresql" if driver is None else f"postgresql+{driver}"
    return urlunsplit(parts._replace(scheme=scheme))


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, InterfaceError, OperationalError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _leaves_connection_unknown(exc: BaseException) -> bool:
    """After `exc` in a driver read, is the connection's state unknown (a reply may be in flight, the
    socket broken)? An SQL error leaves it usable; a cancellation or connection failure does not."""
    if isinstance(exc, asyncpg.PostgresError):
        return isinstance(exc, asyncpg.PostgresConnectionError)
    return isinstance(exc, (asyncio.CancelledError, OSError, asyncpg.InterfaceError))


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a connection whose socket the server closed is discarded for a new one.

    asyncpg notices the closed socket by itself, so this asks no round trip (unlike a pre-ping).
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


class Database:
    """An async engine on asyncpg, with transactions that translate connection failures."""

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.url = with_driver(url, "asyncpg")
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            # Up to twice `pool_size` connections, as many as busy moments need, each kept once opened:
            # an "overflow" connection would be closed on its return and opened again on the next
            # burst (a connect and a type introspection each time, most of a read's cost under load).
            pool_size=2 * pool_size,
            max_overflow=0,
            # No pre-ping: it costs three round trips per checkout. A connection the server closed is
            # replaced at checkout for free (_refuse_closed); one that died unseen (a network cut)
            # surfaces as a connection failure (UnavailableError) that the next request recovers from.
            pool_pre_ping=False,
            pool_recycle=1800,
            connect_args={
                "timeout": connect_timeout,
                "server_settings": {"application_name": "tasksgodzilla"},
            },
        )
        event.listen(self.engine.sync_engine, "checkout", _refuse_closed)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            if _is_connection_failure(exc):
                raise UnavailableError("the database cannot be reached") from exc
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads in autocommit: no BEGIN/COMMIT round trips around one SELECT."""
        try:
            async with self.engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        except Exception as exc:
            if _is_connection_failure(exc):
                raise UnavailableError("the database cannot be reached") from exc
            raise

    @asynccontextmanager
    async def driver_read(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection as the driver gives it, in autocommit, for the hottest reads.

        No SQLAlchemy connection, statement or result around it (most of a one-row read's CPU): the
        caller runs hand-written SQL with `$n` parameters, which asyncpg prepares once per connection
        and caches. A connection that fails or is interrupted mid-read is discarded, not pooled again.
        """
        try:
            fairy = await greenlet_spawn(self.engine.sync_engine.pool.connect)
        except Exception as exc:
            if _is_connection_failure(exc):
                raise UnavailableError("the database cannot be reached") from exc
            raise
        try:
            yield fairy.driver_connection
        except BaseException as exc:
            if not _leaves_connection_unknown(exc):
                await greenlet_spawn(fairy.close)
                raise
            await greenlet_spawn(fairy.invalidate)
            if isinstance(exc, Exception):
                raise UnavailableError("the database cannot be reached") from exc
            raise
        await greenlet_spawn(fairy.close)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """Several reads that see one moment (a read-only REPEATABLE READ transaction).

        In `transaction()` (READ COMMITTED) each statement sees what was committed before it, so a
        run read before a step may predate it; here every statement sees the state at the first one.
        """
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                async with conn.begin():
                    yield conn
        except Exception as exc:
            if _is_connection_failure(exc):
                raise UnavailableError("the database cannot be reached") from exc
            raise

    @asynccontextmanager
    async def advisory_lock(self, key: str) -> AsyncIterator[None]:
        """Hold a PostgreSQL advisory lock on `key` for the block: serialises every process and machine."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), {"key": key})
                await conn.commit()
                try:
                    yield
                finally:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), {"key": key}
                    )
                    await conn.commit()
        except Exception as exc:
            if _is_connection_failure(exc):
                raise UnavailableError("the database cannot be reached") from exc
            raise

    async def ping(self) -> None:
        """Raise UnavailableError unless the database answers."""
        async with self.transaction() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
