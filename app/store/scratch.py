"""Databases made for a while and thrown away: one per test, one per benchmark run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from app.store import migrate
from app.store.database import with_driver
from app.store.embedded import EmbeddedPostgres


def database_url_for(server_url: str, name: str) -> str:
    """The URL of database `name` on the server `server_url` reaches."""
    parts = urlsplit(with_driver(server_url, None))
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_execute(server_url: str, statement: sql.Composed) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    with psycopg.connect(with_driver(server_url, None), autocommit=True) as conn:
        conn.execute(statement)


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """A new database (a file copy of `template` when given); its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    admin_execute(server_url, statement)
    return database_url_for(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    admin_execute(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def migrated_database(server_url: str | None, name: str, scratch: Path) -> Iterator[tuple[str, str]]:
    """A fresh database `name` at the migration head, dropped after; with no server URL, an embedded
    server in `scratch`. Yields the URL and a line saying where it is."""
    server: EmbeddedPostgres | None = None
    where = "given server"
    if server_url is None:
        server = EmbeddedPostgres(scratch / "pgdata").start()
        server_url = server.url()
        where = "embedded server"
    try:
        drop_database(server_url, name)
        url = create_database(server_url, name)
        try:
            migrate.upgrade(url)
            yield url, f"{where}, database {name}"
        finally:
            drop_database(server_url, name)
    finally:
        if server is not None:
            server.stop()
