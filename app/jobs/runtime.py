"""The job app and the worker: Procrastinate on psycopg beside SQLAlchemy on asyncpg, in one event loop.

A worker also runs the periodic duties (app.jobs.duties): retry jobs whose worker died (no
heartbeat), re-queue work whose job went missing, block steps stuck past the limit, and forget old
records. They are Procrastinate periodic tasks: each tick runs once, whichever workers are up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import procrastinate
import psycopg_pool

from app.config import Settings
from app.engines.base import Engine
from app.jobs.duties import DUTY_QUEUE, duties, register_duties
from app.jobs.fencing import FencedJobManager
from app.jobs.queue import ProcrastinateQueue
from app.jobs.retry import RetryPolicy
from app.jobs.tasks import SERVICES_KEY, register_tasks
from app.logs import get_logger
from app.services.context import Services, build_services
from app.store.database import Database, with_driver

JOB_QUEUE = procrastinate.jobs.DEFAULT_QUEUE

log = get_logger(__name__)


def create_job_app(settings: Settings, database_url: str) -> procrastinate.App:
    """A Procrastinate app with every task registered, not yet open."""
    connector = procrastinate.PsycopgConnector(conninfo=with_driver(database_url, None))
    app = procrastinate.App(connector=connector)
    app.job_manager = FencedJobManager(connector)  # a late try of a taken-over job changes nothing
    policy = RetryPolicy(
        max_attempts=settings.job_max_attempts,
        base_seconds=settings.retry_backoff_seconds,
        cap_seconds=settings.retry_backoff_max_seconds,
    )
    register_tasks(app, policy)
    register_duties(app, settings.scheduler_interval_seconds)
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
        # A connection per running job, plus each of the two workers' LISTEN and fetch connections.
        max_size=settings.worker_concurrency + len(duties(settings.scheduler_interval_seconds)) + 4,
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
    """Work until cancelled: jobs from the queue on one Procrastinate worker, the periodic duties on
    another (so a duty never waits for a slot behind long agent jobs)."""
    settings = svc.settings
    base = name or f"{socket.gethostname()}-worker"
    common: dict[str, Any] = {
        "additional_context": {SERVICES_KEY: svc},
        "install_signal_handlers": False,
        "update_heartbeat_interval": settings.worker_heartbeat_seconds,
        "stalled_worker_timeout": settings.stalled_after_seconds,
        "listen_notify": True,
        # LISTEN/NOTIFY wakes a worker for new jobs; polling catches retries that come due later.
        "fetch_job_polling_interval": settings.worker_poll_seconds,
        "wait": True,
    }
    async with asyncio.TaskGroup() as workers:  # one ending with an error stops the other
        workers.create_task(
            app.run_worker_async(
                name=base, queues=[JOB_QUEUE], concurrency=settings.worker_concurrency, **common
            )
        )
        workers.create_task(
            app.run_worker_async(
                name=f"{base}-duties",
                queues=[DUTY_QUEUE],
                concurrency=len(duties(settings.scheduler_interval_seconds)),
                **common,
            )
        )


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
