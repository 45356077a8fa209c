"""The job app and the worker: Procrastinate on psycopg beside SQLAlchemy on asyncpg, in one event loop.

A worker also runs the periodic duties (app.jobs.duties): retry jobs whose worker died (no
heartbeat), re-queue work whose job went missing, block steps stuck past the limit, and forget old
records. They are Procrastinate periodic tasks: each tick runs once, whichever workers are up.

A worker outlives the database's outages. Its LISTEN reconnects by itself (JobConnector); its
heartbeat and periodic defers wait for the pool to reconnect; and a Procrastinate worker that stops
all the same (an outage longer than the pool waits, its worker row pruned while it was frozen) is
started again (keep_working): in `serve`, in `worker` and in a command's session alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import procrastinate
import psycopg
import psycopg_pool
from procrastinate.connector import Notify
from procrastinate.worker import Worker

from app.config import Settings
from app.engines.base import Engine
from app.jobs.duties import DUTY_QUEUE, duties, register_duties
from app.jobs.fencing import FencedJobManager
from app.jobs.housekeeping import tidy_this_machine
from app.jobs.notify import register_notifications
from app.jobs.queue import ProcrastinateQueue
from app.jobs.retry import RetryPolicy
from app.jobs.tasks import SERVICES_KEY, register_tasks
from app.logs import get_logger
from app.services.context import Services, build_services
from app.store.database import Database, with_driver
from app.store.jobs import host_queue
from app.tracing import Tracing

JOB_QUEUE = procrastinate.jobs.DEFAULT_QUEUE
# One Procrastinate worker per queue in every worker process: jobs on `default`, the periodic duties
# on `duties` (so a duty never waits for a slot behind long agent jobs).
QUEUES = (JOB_QUEUE, DUTY_QUEUE)
# Pauses before restarting a Procrastinate worker that stopped by itself, growing while it keeps
# stopping quickly (the database stays away).
RESTART_PAUSES = (0.5, 1.0, 2.0, 5.0, 10.0)
# Pauses before connecting the LISTEN again, growing while the database refuses.
RELISTEN_PAUSES = (0.1, 0.5, 1.0, 2.0, 5.0)
# How long a query waits for a pooled connection while the database is away (psycopg_pool's default),
# never longer than the stall window: a worker silent that long has had its jobs retried elsewhere.
POOL_WAIT_SECONDS = 30.0

log = get_logger(__name__)


class Backoff:
    """Pauses between tries that grow while the tries keep failing quickly."""

    def __init__(self, pauses: Sequence[float]) -> None:
        self.pauses = pauses
        self.quick = 0

    def after(self, lasted: float) -> float:
        """The pause after a try that lasted `lasted` seconds: one that outlasted the longest pause
        counts as a success, so the next failure starts again from the shortest."""
        self.quick = self.quick + 1 if lasted < self.pauses[-1] else 1
        return self.pauses[min(self.quick, len(self.pauses)) - 1]


class JobConnector(procrastinate.PsycopgConnector):
    """Procrastinate's psycopg connector whose LISTEN survives an outage of the database.

    Procrastinate's listener reconnects at once when its connection dies, and fails when that
    reconnection is refused (the server is still down); the worker then stops, gracefully: it
    cancels its heartbeat and waits for its running jobs, which another worker takes over once the
    stall window has passed, while their agents are still working. Here the listener tries again,
    after a growing pause, for as long as the worker runs; jobs announced meanwhile are found by
    polling (TASKSGODZILLA_WORKER_POLL_SECONDS).
    """

    async def listen_notify(self, on_notification: Notify, channels: Iterable[str]) -> None:
        backoff = Backoff(RELISTEN_PAUSES)
        while True:
            started = time.monotonic()
            try:
                await super().listen_notify(on_notification=on_notification, channels=channels)
            except procrastinate.exceptions.ConnectorException as exc:
                if not isinstance(exc.__cause__, psycopg.OperationalError):
                    raise
                pause = backoff.after(time.monotonic() - started)
                log.warning("the job listener cannot connect", error=str(exc.__cause__), pause_seconds=pause)
                await asyncio.sleep(pause)


def create_job_app(settings: Settings, database_url: str, **pool_options: Any) -> procrastinate.App:
    """A Procrastinate app with every task registered, not yet open; `pool_options` go to the pool
    it opens when it is opened without one (as Procrastinate's own command line does)."""
    connector = JobConnector(conninfo=with_driver(database_url, None), **pool_options)
    app = procrastinate.App(connector=connector)
    app.job_manager = FencedJobManager(connector)  # a late try of a taken-over job changes nothing
    policy = RetryPolicy(
        max_attempts=settings.job_max_attempts,
        base_seconds=settings.retry_backoff_seconds,
        cap_seconds=settings.retry_backoff_max_seconds,
    )
    register_tasks(app, policy)
    notify_retry = RetryPolicy(
        max_attempts=settings.notify_max_attempts,
        base_seconds=settings.retry_backoff_seconds,
        cap_seconds=settings.retry_backoff_max_seconds,
    )
    register_notifications(app, notify_retry)
    register_duties(app, settings.scheduler_interval_seconds, settings.intake_poll_seconds)
    return app


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    database_url: str,
    *,
    environ: Mapping[str, str] | None = None,
    engines: Mapping[str, Engine] | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[tuple[procrastinate.App, Services]]:
    """The open job app and the services that defer through it; both closed on exit (the tracer
    too: what it still holds is exported first)."""
    database = Database(database_url, pool_size=settings.db_pool_size)
    app = create_job_app(settings, database_url)
    # Opened without waiting for a first connection: a server that is down now may be up later, and
    # /health must be able to say so rather than the process failing to start.
    pool = psycopg_pool.AsyncConnectionPool(
        with_driver(database_url, None),
        min_size=1,
        # Room for each running job's outcome and each running duty's queries, plus the two workers'
        # fetches, heartbeats and periodic defers (each LISTEN connects outside the pool).
        max_size=settings.worker_concurrency + len(duties(settings.scheduler_interval_seconds)) + 4,
        timeout=min(POOL_WAIT_SECONDS, settings.stalled_after_seconds),
        # Every Procrastinate query is one statement: in autocommit it ends its own transaction, so
        # a worker frozen (or cut off) before it would have sent COMMIT holds no row lock (a fetched
        # job's, which every other worker's periodic defer then waits on, for as long as it stays so).
        configure=autocommit,
        open=False,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=False)
    try:
        async with app.open_async(pool=pool):
            queue = ProcrastinateQueue(app)
            services = build_services(
                settings, database, queue, environ=environ, engines=engines, tracing=tracing
            )
            try:
                yield app, services
            finally:
                await asyncio.to_thread(services.tracing.shutdown)
    finally:
        await pool.close()
        await database.dispose()


async def autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)


class Stoppable(Protocol):
    """What keep_working needs of a worker: Procrastinate's Worker is one."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def keep_working(make_worker: Callable[[], Stoppable], *, name: str, stopping: asyncio.Event) -> None:
    """Run a worker until `stopping` is set, starting a new one whenever one ends by itself.

    Procrastinate stops a worker whose side task failed (its heartbeat or periodic defer outlasted
    the pool's wait for the database) or whose fetch failed (its row was pruned while it was
    frozen: a foreign key violation); it then returns, or raises. Without this, the process would
    live on without that worker. A stop is asked for with the worker's own `stop()` (its running
    jobs finish), never by cancelling it: a cancel that lands while the worker starts can be
    swallowed between two database calls, and the worker would then never stop.
    """
    backoff = Backoff(RESTART_PAUSES)
    while not stopping.is_set():
        started = time.monotonic()
        error = None
        try:
            await _run_until_stopped(make_worker(), stopping)
        except Exception as exc:
            if stopping.is_set():
                return  # the graceful stop failed (the database is away): still a stop
            error = repr(exc)
        if stopping.is_set():
            return
        pause = backoff.after(time.monotonic() - started)
        log.warning(
            "a job worker stopped by itself; starting it again", worker=name, error=error, pause_seconds=pause
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)


async def _run_until_stopped(worker: Stoppable, stopping: asyncio.Event) -> None:
    """`worker.run()` until it ends by itself, or `stopping` is set and it has stopped gracefully."""
    running = asyncio.ensure_future(worker.run())
    # One turn of the loop: the worker's run() resets its own stop request before its first await,
    # so it must have started before a stop() can stick.
    await asyncio.sleep(0)
    watching = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({running, watching}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            worker.stop()
        await running
    except asyncio.CancelledError:
        running.cancel()  # cancelled from outside (a second Ctrl-C): its jobs go to another worker
        with contextlib.suppress(BaseException):
            await running
        raise
    finally:
        watching.cancel()


async def run_worker(
    app: procrastinate.App, svc: Services, *, stopping: asyncio.Event, name: str | None = None
) -> None:
    """Work until `stopping` is set: a Procrastinate worker per queue (QUEUES), each kept working."""
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
    concurrency = {
        JOB_QUEUE: settings.worker_concurrency,
        DUTY_QUEUE: len(duties(settings.scheduler_interval_seconds)),
    }
    app.perform_import_paths()
    async with asyncio.TaskGroup() as workers:
        for queue in QUEUES:
            worker_name = base if queue == JOB_QUEUE else f"{base}-{queue}"
            queues = listened_queues(settings) if queue == JOB_QUEUE else [queue]
            options = {"name": worker_name, "queues": queues, "concurrency": concurrency[queue], **common}
            make = functools.partial(Worker, app=app, **{**app.worker_defaults, **options})
            workers.create_task(keep_working(make, name=worker_name, stopping=stopping))
        workers.create_task(tidy_this_machine(svc, stopping))


def listened_queues(settings: Settings) -> list[str]:
    """The job queues this machine's workers take: the shared one, and this machine's own (the jobs
    of projects registered by local path here)."""
    return [JOB_QUEUE, host_queue(settings.machine)]


# The stop flag of each worker task start_worker made.
_STOPPING: weakref.WeakKeyDictionary[asyncio.Task[None], asyncio.Event] = weakref.WeakKeyDictionary()


def start_worker(app: procrastinate.App, svc: Services, *, name: str | None = None) -> asyncio.Task[None]:
    """The worker as a background task whose unexpected end is logged, never silent."""
    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_worker(app, svc, name=name, stopping=stopping), name="tasksgodzilla-worker"
    )
    _STOPPING[task] = stopping

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("the job worker stopped", error=repr(done.exception()))

    task.add_done_callback(report)
    return task


async def stop_worker(task: asyncio.Task[None]) -> None:
    """Stop the worker gracefully (its running jobs finish) and wait until it has; cancelling the
    caller meanwhile cancels the worker (its jobs are then left to another worker)."""
    stopping = _STOPPING.get(task)
    if stopping is None:
        task.cancel()
    else:
        stopping.set()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
