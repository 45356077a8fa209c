"""Jobs deferred inside the caller's transaction: they exist exactly when the change that needs them does."""

from __future__ import annotations

import asyncio

import procrastinate
import pytest
from procrastinate import jobs as procrastinate_jobs
from sqlalchemy import text

from app.domain.workflow import JobName, Work, setup_work
from app.jobs.fencing import FencedJobManager, holds
from app.store import jobs
from app.store.database import with_driver
from tests.support.workflow import wait_for


async def _jobs(database) -> list[tuple[str, str, str, dict]]:
    async with database.read() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT task_name, status, queueing_lock, args FROM procrastinate_jobs ORDER BY id"
        )
        return [tuple(row) for row in rows.all()]


class Rollback(Exception):
    pass


async def test_a_job_commits_or_rolls_back_with_its_transaction(database):
    with pytest.raises(Rollback):
        async with database.transaction() as conn:
            assert await jobs.defer(conn, setup_work(7))
            raise Rollback
    assert await _jobs(database) == []
    async with database.transaction() as conn:
        assert await jobs.defer(conn, setup_work(7))
        assert not await jobs.defer(conn, setup_work(7)), "the same work is waiting already"
        assert await jobs.defer(conn, setup_work(8))
    assert await _jobs(database) == [
        ("project_setup_job", "todo", "setup:7", {"project_id": 7}),
        ("project_setup_job", "todo", "setup:8", {"project_id": 8}),
    ]


async def test_a_duplicate_from_another_transaction_does_not_abort_the_callers(database):
    async with database.transaction() as conn:
        await jobs.defer(conn, setup_work(1))
    async with database.transaction() as conn:
        assert not await jobs.defer(conn, setup_work(1))
        # The transaction is still usable: a unique violation would have aborted it.
        assert await conn.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 1


async def test_a_worker_is_woken_by_the_commit_and_runs_the_job(database, database_url):
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=with_driver(database_url, None))
    )
    ran: asyncio.Queue[int] = asyncio.Queue()

    @app.task(name=JobName.PROJECT_SETUP.value)
    async def probe(project_id: int) -> None:
        await ran.put(project_id)

    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(install_signal_handlers=False, fetch_job_polling_interval=3600, wait=True)
        )
        try:
            # Deferred once the worker listens: a job committed between its first fetch and its
            # LISTEN would wait for the next poll (in production, TASKSGODZILLA_WORKER_POLL_SECONDS).
            await wait_for(lambda: _listening(database), what="the worker's LISTEN")
            async with database.transaction() as conn:
                await jobs.defer(
                    conn, Work(JobName.PROJECT_SETUP, (("project_id", 42),), "setup:42", "setup:42")
                )
            # Polling is an hour away: the worker sees the committed job through its NOTIFY, never by
            # waiting for a poll.
            assert await asyncio.wait_for(ran.get(), timeout=60) == 42
        finally:
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker


async def _listening(database) -> bool:
    async with database.read() as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query ILIKE 'LISTEN%procrastinate%'"
            )
        )
        return found.scalar_one() > 0


async def test_a_late_try_of_a_taken_over_job_changes_nothing(database, database_url):
    """Try 0 froze; the stalled-job duty retried the row and try 1 holds it: try 0's outcome is dropped."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=with_driver(database_url, None))
    )
    async with database.transaction() as conn:
        await jobs.defer(conn, setup_work(5))
    async with app.open_async():
        connector = app.connector
        manager = FencedJobManager(connector)
        await connector.execute_query_async("UPDATE procrastinate_jobs SET status = 'doing'")
        (row,) = await connector.execute_query_all_async("SELECT * FROM procrastinate_jobs")
        late = procrastinate_jobs.Job.from_row(row)
        await connector.execute_query_async("UPDATE procrastinate_jobs SET attempts = attempts + 1")  # try 1
        (row,) = await connector.execute_query_all_async("SELECT * FROM procrastinate_jobs")
        holder = procrastinate_jobs.Job.from_row(row)
        assert not await holds(manager, late)
        assert await holds(manager, holder)
        await manager.finish_job(late, procrastinate_jobs.Status.FAILED, delete_job=False)
        await manager.retry_job(late)
        assert (await _jobs(database))[0][1] == "doing", "the late try neither failed nor retried it"
        await manager.finish_job(holder, procrastinate_jobs.Status.SUCCEEDED, delete_job=False)
    assert (await _jobs(database))[0][1] == "succeeded"
