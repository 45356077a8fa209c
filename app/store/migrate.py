"""Schema migrations through Alembic: upgrade, downgrade, and the revisions in force.

`migrations/` sits at the top of the repository; a built wheel carries it as `app/_migrations`.
Alembic's async env runs its own event loop, so call these from synchronous code (the CLI).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import UnavailableError
from app.store.database import with_driver

if TYPE_CHECKING:
    from alembic.config import Config

_PACKAGE = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """A top-level folder of the repository (`migrations`, `templates`), installed or checked out."""
    bundled = _PACKAGE / f"_{name}"
    return bundled if bundled.is_dir() else _PACKAGE.parent / name


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config  # here: Alembic costs ~10 MB that only migrating needs

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
    from alembic import command

    ensure_reachable(database_url)
    command.upgrade(alembic_config(database_url), revision)


def upgrade_apart(database_url: str) -> None:
    """`upgrade` to the head in a child interpreter, so that a long-running caller (`serve`) does not
    keep Alembic and the migration scripts in its memory (~10 MB). The URL goes over a pipe, not argv
    or the environment."""
    ensure_reachable(database_url)
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _UPGRADE_SCRIPT],
        input=database_url,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UnavailableError(f"the database could not be migrated: {last[:500]}")


_UPGRADE_SCRIPT = "import sys; from app.store.migrate import upgrade; upgrade(sys.stdin.readline().strip())"


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    ensure_reachable(database_url)
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at, or None before the first migration."""
    exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return None
    return await conn.scalar(text("SELECT version_num FROM alembic_version"))
