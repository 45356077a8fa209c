"""Schema migrations through Alembic: upgrade, downgrade, and the revisions in force.

`migrations/` sits at the top of the repository; a built wheel carries it as `app/_migrations`.
Alembic's async env runs its own event loop, so call these from synchronous code (the CLI).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import UnavailableError
from app.store.database import with_driver

_PACKAGE = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """A top-level folder of the repository (`migrations`, `templates`), installed or checked out."""
    bundled = _PACKAGE / f"_{name}"
    return bundled if bundled.is_dir() else _PACKAGE.parent / name


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    if database_url is not None:
        # Kept out of the ini options, which would treat `%` in a password as interpolation.
        config.attributes["database_url"] = with_driver(database_url, "asyncpg")
    return config


def ensure_reachable(database_url: str, timeout_seconds: int = 10) -> None:
    """Raise UnavailableError, with the server's reason, unless the database accepts a connection."""
    try:
        with psycopg.connect(with_driver(database_url, None), connect_timeout=timeout_seconds):
            pass
    except psycopg.OperationalError as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or "no answer"
        raise UnavailableError(f"cannot reach the database: {reason}") from None


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_reachable(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    ensure_reachable(database_url)
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at, or None before the first migration."""
    exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return None
    return await conn.scalar(text("SELECT version_num FROM alembic_version"))
