"""`tasksgodzilla serve`: provision the database, migrate, and run the web application."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from aiohttp import web

from app.config import Settings
from app.jobs.runtime import open_runtime, start_worker, stop_worker
from app.logs import get_logger
from app.store import migrate
from app.store.provision import provision_database
from app.web.app import create_app

log = get_logger("app.serve")
# Pauses before restarting a worker that stopped by itself, growing while it keeps stopping quickly.
RESTART_PAUSES = (0.5, 1.0, 2.0, 5.0, 10.0)


def run_server(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; an embedded database is stopped on the way out."""
    started = time.perf_counter()
    with provision_database(settings) as url:
        embedded = settings.database_url is None
        log.info(
            "database ready",
            embedded=embedded,
            seconds=round(time.perf_counter() - started, 3),
            location=str(settings.embedded_pgdata) if embedded else "TASKSGODZILLA_DATABASE_URL",
        )
        if settings.migrate_on_start:
            migrate.upgrade(url)
            log.info("migrations applied", revision=migrate.head_revision())
        app = create_app(settings, url)
        log.info("listening", url=f"http://{settings.host}:{settings.port}")
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    log.info("stopped")


def run_worker_process(settings: Settings, *, name: str | None = None) -> None:
    """Work until SIGINT/SIGTERM, then let the running jobs finish or be retried elsewhere."""
    with provision_database(settings) as url:
        if settings.migrate_on_start:
            migrate.upgrade(url)
        asyncio.run(_work(settings, url, name))
    log.info("worker stopped")


async def _work(settings: Settings, url: str, name: str | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with open_runtime(settings, url) as (job_app, services):
        quick_ends = 0
        while True:
            started = time.monotonic()
            working = start_worker(job_app, services, name=name)
            log.info("worker started", concurrency=settings.worker_concurrency)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            await stop_worker(working)
            if stop.is_set():
                return
            # Procrastinate stops a worker whose LISTEN connection or heartbeat lost the database (a
            # server restart); the process would then exit with status 0, which a supervisor does not
            # restart. Start another worker, after a pause that grows while the database stays away.
            quick_ends = quick_ends + 1 if time.monotonic() - started < RESTART_PAUSES[-1] else 1
            pause = RESTART_PAUSES[min(quick_ends, len(RESTART_PAUSES)) - 1]
            log.warning("the job worker stopped by itself; starting it again", pause_seconds=pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return
