"""Reading a system under fault: database probes on connections of their own (they fail soft while
the server is away), the in-process services' view, and a client of a `tasksgodzilla serve` process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from app.domain.records import Event, ProtocolRun, StepRun
from app.jobs.duties import DUTY_QUEUE
from app.jobs.runtime import JOB_QUEUE, QUEUES
from app.services.context import Services
from app.store import events, protocols, steps
from app.store.jobs import HOST_QUEUE_PREFIX
from tests.support.faults import PROBE_APP, Fleet, Proc
from tests.support.workflow import wait_for


async def probe(
    url: str, query: str, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]] | None:
    """Rows of `query` over a fresh connection of its own; None while the database cannot answer."""
    try:
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=3, application_name=PROBE_APP
        ) as conn:
            cursor = await conn.execute(query, params)  # type: ignore[arg-type]
            return await cursor.fetchall()
    except (psycopg.OperationalError, OSError):
        return None


async def probe_value(url: str, query: str, params: Mapping[str, Any] | None = None) -> Any:
    rows = await probe(url, query, params)
    return rows[0][0] if rows else None


async def above(url: str, query: str, floor: int | None, params: Mapping[str, Any] | None = None) -> bool:
    """`query`'s value exceeds `floor` (False while either is unknown)."""
    value = await probe_value(url, query, params)
    return value is not None and floor is not None and value > floor


# Connections opened since `since` that LISTEN for one queue's jobs: each Procrastinate worker's.
# (Its listener runs `SELECT 1` after 30 s without a notification: count soon after they connect.)
# pg_stat_activity shows a connection's last statement: the job worker LISTENs for `default`, then
# for its machine's queue (`host:<name>`), so that is what its connection shows.
LISTENS = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_start > %(since)s"
    " AND query LIKE 'LISTEN %%procrastinate_queue_v1#' || %(channel)s || '%%'"
)
LAST_CHANNEL = {JOB_QUEUE: HOST_QUEUE_PREFIX, DUTY_QUEUE: DUTY_QUEUE}
# Jobs of the job queues (the shared one, and machines' own) done, and sent back to the queue to try
# again (the duties' jobs, on a queue of their own, succeed every second).
_JOB_EVENTS = (
    "SELECT count(*) FROM procrastinate_events event JOIN procrastinate_jobs job ON job.id = event.job_id"
    f" WHERE job.queue_name <> '{DUTY_QUEUE}' AND event.type = "
)
JOBS_DONE = _JOB_EVENTS + "'succeeded'"
JOBS_RETRIED = _JOB_EVENTS + "'deferred_for_retry'"


async def listens(url: str, since: Any) -> dict[str, int | None]:
    """Each queue's LISTEN connections opened since `since` (None while the database cannot say)."""
    return {
        queue: await probe_value(url, LISTENS, {"since": since, "channel": LAST_CHANNEL[queue]})
        for queue in QUEUES
    }


async def listening(url: str, since: Any, per_queue: int) -> bool:
    """Every queue has `per_queue` LISTEN connections opened since `since` (one per worker process)."""
    return all(count == per_queue for count in (await listens(url, since)).values())


async def no_job_doing(url: str) -> bool:
    """No Procrastinate job is `doing` (read over a probe connection)."""
    return await probe_value(url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 0


async def read_runs(svc: Services, run_ids: list[int]) -> list[ProtocolRun]:
    async with svc.database.snapshot() as conn:  # the runs as of one moment
        return [await protocols.get(conn, run_id) for run_id in run_ids]


async def read_steps(svc: Services, run_id: int) -> list[StepRun]:
    async with svc.database.read() as conn:
        return await steps.list_for_protocol(conn, run_id)


async def read_events(svc: Services, run_id: int) -> list[Event]:
    async with svc.database.read() as conn:
        return await events.list_page(conn, protocol_run_id=run_id, limit=500)


SETTLED = ("completed", "blocked", "failed", "cancelled")


async def run_settled(svc: Services, run_id: int) -> ProtocolRun | None:
    """The run once it stopped moving (completed, or stopped short of it), else None."""
    (run,) = await read_runs(svc, [run_id])
    return run if run.status.value in SETTLED else None


@dataclass
class Api:
    """A client of a `tasksgodzilla serve` process that never raises on a refused connection."""

    base: str
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: Mapping[str, Any] | None = None
    ) -> tuple[int, Any]:
        """(status, JSON body); (0, None) while nothing answers. `raw`: `data` and `headers` as sent."""
        sent = dict(raw) if raw is not None else {"json": body}
        try:
            async with self.session.request(
                method, self.base + path, timeout=aiohttp.ClientTimeout(total=30), **sent
            ) as response:
                data = await response.json(content_type=None) if response.content_length != 0 else None
                return response.status, data
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return 0, None

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.call(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {data}"
        return data

    async def health(self) -> int:
        return (await self.call("GET", "/health"))[0]


@contextlib.asynccontextmanager
async def api_of(server: Proc, port: int) -> AsyncIterator[Api]:
    """A client of `server` once its /health answers 200."""
    async with aiohttp.ClientSession() as session:
        api = Api(f"http://127.0.0.1:{port}", session)

        async def up() -> bool:
            if not server.alive():
                raise AssertionError(f"{server.name} exited:\n{server.tail()}")
            return await api.health() == 200

        await wait_for(up, seconds=60, what=f"{server.name} to answer /health")
        yield api


async def start_run(api: Api, fleet: Fleet, local_path: Path, title: str) -> dict[str, Any]:
    """Register a project on `local_path` through the API, wait for its setup, start a run on it."""
    project = await api.ok("POST", "/projects", {"name": "demo", "local_path": str(local_path)})

    async def ready() -> bool:
        fleet.check()
        status, body = await api.call("GET", f"/projects/{project['id']}")
        return status == 200 and body["status"] == "ready"

    await wait_for(ready, seconds=60, what="project setup")
    return await api.ok("POST", f"/projects/{project['id']}/protocols", {"title": title, "start": True})


async def api_events(api: Api, run_id: int) -> list[dict[str, Any]]:
    """A run's events as the API lists them (the first 500)."""
    return (await api.ok("GET", f"/protocols/{run_id}/events?limit=500"))["items"]


async def api_run_settled(api: Api, run_id: int) -> dict[str, Any] | None:
    """The run (as the API shows it) once it stopped moving, else None (also while the API cannot say)."""
    status, run = await api.call("GET", f"/protocols/{run_id}")
    return run if status == 200 and run["status"] in SETTLED else None
