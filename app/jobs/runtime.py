"""The job app and the worker: Procrastinate on psycopg beside SQLAlchemy on asyncpg, in one event loop.

A worker also runs the periodic scans: retry jobs whose worker died (no heartbeat), re-queue work
whose job went missing, and block steps stuck past the limit. Every worker runs them; the queueing
locks make running them twice harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import procrastinate
import psycopg_pool

from app.config import Settings
from app.engines.base import Engine
from app.jobs.queue import ProcrastinateQueue
from app.jobs.retry import RetryPolicy
from app.jobs.tasks import SERVICES_KEY, register_tasks
from app.logs import get_logger
from app.services import scheduler
from app.services.agents import close_abandoned_runs
from app.services.context import Services, build_services
from app.store.database import Database, with_driver

log = get_logger(__name__)


def create_job_app(settings: Settings, database_url: str) -> procrastinate.App:
    """A Procrastinate app with every task registered, not yet open."""
    connector = procrastinate.PsycopgConnector(conninfo=with_driver(database_url, None))
    app = procrastinate.App(connector=connector)
    policy = RetryPolicy(
        max_attempts=settings.job_max_attempts,
        base_seconds=settings.retry_backoff_seconds,
        cap_seconds=settings.retry_backoff_max_seconds,
    )
    register_tasks(app, policy)
    return app


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    database_url: str,
    *,
    environ: Mapping[str, str] | None = None,
    engines: Mapping[str, Engine] | None = None,
) -> AsyncIterator[tuple[procrastinate.App, Services]]:
    """The open job app and the services that defer through it; both closed on exit."""
    database = Database(database_url, pool_size=settings.db_pool_size)
    app = create_job_app(settings, database_url)
    # Opened without waiting for a first connection: a server that is down now may be up later, and
    # /health must be able to say so rather than the process failing to start.
    pool = psycopg_pool.AsyncConnectionPool(
        with_driver(database_url, None),
        min_size=1,
        max_size=max(2, settings.worker_concurrency + 2),
        open=False,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=False)
    try:
        async with app.open_async(pool=pool):
            queue = ProcrastinateQueue(app)
            yield app, build_services(settings, database, queue, environ=environ, engines=engines)
    finally:
        await pool.close()
        await database.dispose()


async def run_worker(app: procrastinate.App, svc: Services, *, name: str | None = None) -> None:
    """Work until cancelled: jobs from the queue, plus the periodic scans."""
    settings = svc.settings
    scans = asyncio.create_task(_scan_forever(app, svc), name="tasksgodzilla-scans")
    try:
        await app.run_worker_async(
            name=name or f"{socket.gethostname()}-worker",
            concurrency=settings.worker_concurrency,
            additional_context={SERVICES_KEY: svc},
            install_signal_handlers=False,
            update_heartbeat_interval=settings.worker_heartbeat_seconds,
            stalled_worker_timeout=settings.stalled_after_seconds,
            listen_notify=True,
            # LISTEN/NOTIFY wakes a worker for new jobs; polling catches retries that come due later.
            fetch_job_polling_interval=settings.worker_poll_seconds,
            wait=True,
        )
    finally:
        scans.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scans


def start_worker(app: procrastinate.App, svc: Services, *, name: str | None = None) -> asyncio.Task[None]:
    """The worker as a background task whose unexpected end is logged, never silent."""
    task = asyncio.create_task(run_worker(app, svc, name=name), name="tasksgodzilla-worker")

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("the job worker stopped", error=repr(done.exception()))

    task.add_done_callback(report)
    return task


async def stop_worker(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _scan_forever(app: procrastinate.App, svc: Services) -> None:
    while True:
        await asyncio.sleep(svc.settings.scheduler_interval_seconds)
        try:
            await scan_once(app, svc)
        except Exception:
            log.exception("periodic scan failed; trying again next time")


async def scan_once(app: procrastinate.App, svc: Services) -> dict[str, int]:
    """One pass of every periodic duty; how much each did."""
    retried = await retry_stalled_jobs(app, svc.settings.stalled_after_seconds)
    queued = await scheduler.requeue_missing_work(svc)
    blocked = await scheduler.fail_stuck_steps(svc)
    await close_abandoned_runs(svc)
    await scheduler.forget_old_idempotency_keys(svc)
    await scheduler.forget_old_deliveries(svc)
    if retried or queued or blocked:
        log.info("periodic scan", retried=retried, queued=queued, blocked=blocked)
    return {"retried": retried, "queued": queued, "blocked": blocked}


async def retry_stalled_jobs(app: procrastinate.App, silent_seconds: float) -> int:
    """Jobs left `doing` by a worker that stopped heartbeating go back to the queue."""
    manager = app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=silent_seconds))
    for job in stalled:
        log.warning("retrying a job whose worker went silent", job_id=job.id, task=job.task_name)
        await manager.retry_job(job)
    await manager.prune_stalled_workers(seconds_since_heartbeat=silent_seconds)
    return len(stalled)
