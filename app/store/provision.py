"""Where the database is: the configured server, or an embedded one started in the data dir."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.config import Settings
from app.store.embedded import EmbeddedPostgres

EMBEDDED_DATABASE = "tasksgodzilla"


@contextmanager
def provision_database(settings: Settings) -> Iterator[str]:
    """Yield a database URL: TASKSGODZILLA_DATABASE_URL, or an embedded server kept until the block ends."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    with EmbeddedPostgres(settings.embedded_pgdata) as server:
        yield server.ensure_database(EMBEDDED_DATABASE)
