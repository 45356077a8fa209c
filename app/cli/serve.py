"""`tasksgodzilla serve`: provision the database, migrate, and run the web application."""

from __future__ import annotations

import asyncio
import signal
import time

from aiohttp import web

from app.config import Settings
from app.engines import spawn
from app.jobs.runtime import open_runtime, start_worker, stop_worker
from app.logs import get_logger
from app.store import migrate
from app.store.provision import provision_database
from app.web.app import create_app

log = get_logger("app.serve")


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
            migrate.upgrade_apart(url)  # the server's memory keeps no Alembic
            log.info("migrations applied")
        app = create_app(settings, url)
        log.info("listening", url=f"http://{settings.host}:{settings.port}")
        # Children (git, agents) are forked off the loop the API answers from (app/engines/spawn.py).
        loop = spawn.new_event_loop()
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, loop=loop)
    log.info("stopped")


def run_worker_process(settings: Settings, *, name: str | None = None) -> None:
    """Work until SIGINT/SIGTERM, then let the running jobs finish or be retried elsewhere."""
    with provision_database(settings) as url:
        if settings.migrate_on_start:
            migrate.upgrade(url)
        with asyncio.Runner(loop_factory=spawn.new_event_loop) as runner:
            runner.run(_work(settings, url, name))
    log.info("worker stopped")


async def _work(settings: Settings, url: str, name: str | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with open_runtime(settings, url) as (job_app, services):
        # Its Procrastinate workers are started again whenever they stop by themselves (a database
        # outage): app.jobs.runtime.keep_working, as for `serve`'s worker.
        working = start_worker(job_app, services, name=name)
        log.info("worker started", concurrency=settings.worker_concurrency)
        await stop.wait()
        await stop_worker(working)
