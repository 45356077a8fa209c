"""Pooled connections the server closed (a restart, pg_terminate_backend) are never handed out, and
a job query's row locks end with the query.

After the server ends every backend of the database, the next transaction, read and snapshot of a
`Database` must succeed: none may fail once on a dead pooled connection (a job would then be
retried, and a paid agent run again).
"""

from __future__ import annotations

import os

from sqlalchemy import text

from app.jobs.runtime import open_runtime
from app.store.database import Database
from tests.support.fault_probes import (
    probe,
    probe_value,
)
from tests.support.workflow import wait_for, workflow_settings

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


async def test_a_job_query_holds_no_lock_once_it_has_run(database_url, tmp_path):
    """A worker frozen between one of Procrastinate's statements and its COMMIT would hold the rows
    it touched (a fetched job's), and every other worker's periodic defer would wait on it for as
    long as it stays frozen: no duty would run anywhere, no stalled job would be retried."""
    settings = workflow_settings(tmp_path)
    async with open_runtime(settings, database_url, environ=dict(os.environ)) as (app, _):
        job_id = await app.configure_task("project_setup_job").defer_async(project_id=1)
        async with app.connector.pool.connection() as frozen:  # type: ignore[attr-defined]
            await frozen.execute("SELECT id FROM procrastinate_jobs WHERE id = %s FOR UPDATE", [job_id])
            # Frozen here: another session must find the row free.
            rows = await probe(
                database_url,
                "SELECT id FROM procrastinate_jobs WHERE id = %(id)s FOR UPDATE NOWAIT",
                {"id": job_id},
            )
    assert rows == [(job_id,)], "the row is still locked by the statement that ran"
