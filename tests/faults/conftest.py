"""Fixtures of the fault tier: process fleets killed at teardown, whatever the test's outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.store import migrate
from app.store.embedded import EmbeddedPostgres
from tests.support.faults import Fleet


@pytest.fixture
def fleets(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Fleet]]:
    """`fleets(env)`: a new fleet of processes with that environment; all of them killed at teardown."""
    made: list[Fleet] = []

    def make(env: dict[str, str]) -> Fleet:
        root = tmp_path / f"fleet-{len(made)}"
        root.mkdir()
        made.append(Fleet(root, env))
        return made[-1]

    try:
        yield make
    finally:
        for fleet in made:
            fleet.close()


@dataclass
class PrivateServer:
    """An embedded PostgreSQL this test alone uses, so it may stop and start it."""

    pgdata: Path
    server: EmbeddedPostgres | None = None

    def start(self) -> None:
        self.server = EmbeddedPostgres(self.pgdata).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def url(self, database: str = "postgres") -> str:
        assert self.server is not None
        return self.server.url(database)


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[tuple[PrivateServer, str]]:
    """A private server (not the session's shared one) and a migrated database on it."""
    server = PrivateServer(tmp_path / "pg")
    server.start()
    try:
        assert server.server is not None
        url = server.server.ensure_database("tasksgodzilla")
        migrate.upgrade(url)
        yield server, url
    finally:
        server.stop()
