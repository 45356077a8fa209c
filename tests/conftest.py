"""Shared fixtures: a clean environment, a real PostgreSQL, and one migrated database per test.

PostgreSQL is the embedded server (started once per session in a temporary folder) unless
TASKSGODZILLA_TEST_DATABASE_URL names a server where this user may create databases. The schema is
migrated once into a template database; each test gets a fresh clone of it (a file copy, ~10 ms).
"""

from __future__ import annotations

import compileall
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from app.engines.agent_user import open_for_traversal
from app.store import migrate
from app.store.database import Database, with_driver
from app.store.embedded import EmbeddedPostgres
from app.store.scratch import create_database, drop_database

pytest_plugins = ["tests.support.agent_clis", "tests.support.fake_openai", "tests.support.fake_anthropic"]

ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_ENV = "TASKSGODZILLA_TEST_DATABASE_URL"
# Read before any test clears the environment.
EXTERNAL_SERVER_URL = os.environ.get(TEST_DATABASE_ENV)


def pytest_configure(config: pytest.Config) -> None:
    """A temporary folder of this session's own: pytest's shared `pytest-of-<user>/pytest-N` folders
    are pruned to the newest three, so a second session on the machine (a helper's, a CI pass) could
    delete this one's embedded database from under it. (Parallel workers get folders inside it.)"""
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="tasksgodzilla-tests-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp
    if not hasattr(config, "workerinput"):  # once, in the process that starts the workers
        # The tests start hundreds of `tasksgodzilla` processes. Where PYTHONDONTWRITEBYTECODE is set
        # (as on CI) each would compile app/'s ~170 modules from source: seconds per process on a
        # loaded machine. Bytecode written once here is read by all of them.
        compileall.compile_dir(ROOT / "app", quiet=1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's default): one worker per core, at least three (much of a test's time is
    spent waiting on PostgreSQL, git and agent processes, so a 2-core machine keeps three busy), at
    most eight (each worker runs its own embedded PostgreSQL). On one external server, one worker:
    the event log orders by transaction id, which is server-wide, so tests side by side on one server
    would hold back each other's events."""
    if EXTERNAL_SERVER_URL:
        return 1
    return max(3, min(os.cpu_count() or 1, 8))


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.fixture(scope="session", autouse=True)
def agents_reach_the_interpreter() -> None:
    """As root, agents run as another user (app.engines.agent_user), and the scripted agents run
    under this interpreter from this checkout: the folders above them must let that user through
    (pyenv's are in /root; a checkout may be in a private temporary folder)."""
    if os.geteuid() == 0:
        open_for_traversal(Path(sys.executable).resolve().parent)
        open_for_traversal(Path(sys.executable).parent)
        open_for_traversal(ROOT)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's TASKSGODZILLA_* variables. Projects may be registered by local
    path under this session's temporary folder, where tests make their repositories (outside the
    home folder, the default root)."""
    for name in list(os.environ):
        if name.startswith("TASKSGODZILLA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TASKSGODZILLA_LOCAL_PATH_ROOTS", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL to the `postgres` database of the server the tests use."""
    if EXTERNAL_SERVER_URL:
        yield EXTERNAL_SERVER_URL
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data").start()
    try:
        _without_durability(server.url())
        yield server.url()
    finally:
        server.stop()


def _without_durability(url: str) -> None:
    """This session's own throwaway server need not survive a power cut: without fsync, making a
    database for each test costs a quarter of the time (the copy's checkpoints wait on the disk)."""
    with psycopg.connect(with_driver(url, None), autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """A database migrated to head, cloned by every test that needs one."""
    name = f"tg_template_{os.getpid()}"
    drop_database(postgres_server_url, name)
    migrate.upgrade(create_database(postgres_server_url, name))
    yield name
    drop_database(postgres_server_url, name)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A new database with nothing in it (for migration tests)."""
    name = f"tg_empty_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_server_url, name)
    drop_database(postgres_server_url, name)


@pytest.fixture
def database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    """A fresh database at the migration head, for this test alone."""
    name = f"tg_test_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_server_url, name, template=template_database)
    drop_database(postgres_server_url, name)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, pool_size=4)
    try:
        yield db
    finally:
        await db.dispose()
