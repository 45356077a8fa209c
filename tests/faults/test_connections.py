"""Pooled connections the server closed (a restart, pg_terminate_backend) are never handed out.

After the server ends every backend of the database, the next transaction, read and snapshot of a
`Database` must succeed: none may fail once on a dead pooled connection (a job would then be
retried, and a paid agent run again).
"""

from __future__ import annotations

from sqlalchemy import text

from app.store.database import Database
from tests.support.fault_probes import (
    probe,
    probe_value,
)
from tests.support.workflow import wait_for

APP_BACKENDS = (
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name = 'tasksgodzilla'"
)


async def test_connections_closed_by_the_server_are_replaced_before_use(database_url):
    database = Database(database_url, pool_size=3)
    try:
        for use in (database.transaction, database.read, database.snapshot):
            async with database.transaction() as a, database.read() as b, database.snapshot() as c:
                for conn in (a, b, c):  # three pooled connections
                    await conn.execute(text("SELECT 1"))
            pids = [row[0] for row in await probe(database_url, APP_BACKENDS) or []]
            assert len(pids) == 3
            await probe(
                database_url, "SELECT pg_terminate_backend(pid) FROM unnest(%(p)s::int[]) pid", {"p": pids}
            )
            await wait_for(lambda p=pids: _gone(database_url, p), seconds=30, what="the backends to end")
            async with use() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1, use.__name__
    finally:
        await database.dispose()


async def _gone(url: str, pids: list[int]) -> bool:
    left = await probe_value(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%(p)s)", {"p": pids})
    return left == 0
