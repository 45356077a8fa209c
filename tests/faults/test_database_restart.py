"""PostgreSQL stopped and started again in the middle of a run: everything recovers by itself.

The test owns a private embedded server (never the session's shared one). `tasksgodzilla serve`
(without its in-process worker) and two `tasksgodzilla worker` processes run a two-step protocol;
while step 1's agent is held (AGENT_GATE), the server is stopped, kept down until the API has said
503 and the agent, let go, has finished and its job has ended (its writes met the outage), then
started again.

Required: /health answers 503 while the server is down and 200 again without a restart of anything;
the workers live on (or come back), heartbeat and take jobs again; every Procrastinate worker (a job
worker and a duties worker per process) and the API's change feed listen again; no job stays
`doing`; the run completes with one commit per step. Recovery is measured from the server's start
to /health 200, to the first job finished, and to every LISTEN back.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.jobs.runtime import QUEUES, open_runtime
from app.services import planning, projects
from tests.support.fault_probes import (
    JOBS_DONE,
    JOBS_RETRIED,
    Api,
    above,
    api_events,
    api_of,
    api_run_settled,
    listening,
    no_job_doing,
    probe_value,
    read_events,
    read_runs,
    run_settled,
    start_run,
)
from tests.support.faults import (
    Fleet,
    Gate,
    Proc,
    fault_environment,
    fault_settings,
    free_port,
    pid_alive,
    report,
    tagged_commits,
)
from tests.support.workflow import make_repos, project_ready, wait_for

FEED_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_start > %(since)s"
    " AND application_name = 'tasksgodzilla-changes'"
)
WORKERS = 2


async def test_a_database_restart_mid_run_recovers_by_itself(private_postgres, tmp_path, fleets):
    server, url = private_postgres
    repos = make_repos(tmp_path)
    gate = Gate(tmp_path / "gate")
    gate.hold(1)
    # Heartbeats stop while the server is down: a stall window longer than the outage (and the pools'
    # reconnection backoff) keeps jobs from being taken from workers that are still running them.
    settings = fault_settings(tmp_path, run_worker=False, stalled_after_seconds=15)
    env = fault_environment(settings, url, AGENT_PLAN_STEPS="2", AGENT_GATE=str(gate.folder))
    fleet: Fleet = fleets(env)
    port = free_port()
    api_proc = fleet.server(port)
    for n in range(1, WORKERS + 1):
        fleet.worker(f"w{n}")
    async with api_of(api_proc, port) as api:
        run = await start_run(api, fleet, repos.local, "Restart")
        agent = await wait_for(lambda: gate.waiting(1), seconds=60, what="step 1's agent at the gate")
        holder = fleet.named(next(a.owner for a in fleet.agents() if a.pid == agent))
        offset = holder.log.stat().st_size

        await asyncio.to_thread(server.stop)
        down_at = time.monotonic()
        await wait_for(lambda: _answers(api, 503), seconds=30, what="/health 503 while the server is down")
        gate.release(1)
        await wait_for(lambda: not pid_alive(agent), seconds=60, what="the agent to finish meanwhile")
        await wait_for(lambda: _job_ended(holder, offset), seconds=60, what="its job to end in the outage")
        await asyncio.to_thread(server.start)
        up_at = time.monotonic()
        restarted = await wait_for(lambda: _started_at(url), seconds=30, what="a probe")
        done_before = await probe_value(url, JOBS_DONE)

        async def back(check: Callable[[], Awaitable[bool]], what: str) -> float:
            await wait_for(check, seconds=60, what=what)
            return round(time.monotonic() - up_at, 2)

        since = {"since": restarted}
        health_seconds, job_seconds, feed_seconds, listen_seconds = await asyncio.gather(
            back(lambda: _answers(api, 200), "/health 200 again"),
            back(lambda: above(url, JOBS_DONE, done_before), "a job done"),
            back(lambda: above(url, FEED_CONNECTIONS, 0, since), "the change feed"),
            back(lambda: listening(url, restarted, WORKERS), "every worker's LISTEN"),
        )
        final = await wait_for(lambda: api_run_settled(api, run["id"]), seconds=120, what="the run to end")
        await wait_for(lambda: no_job_doing(url), seconds=60, what="no job left doing")
        fleet.check()
        retries = await probe_value(url, JOBS_RETRIED)
        executions = sum(
            e["event_type"] == "agent.started" and e["payload"]["stage"] == "execution"
            for e in await api_events(api, run["id"])
        )
        expected = WORKERS * len(QUEUES)  # each process's job worker and duties worker
        interval = settings.worker_heartbeat_seconds
        beating = await wait_for(lambda: _beating(url, interval, expected), seconds=30, what="heartbeats")
    commits = [tagged_commits(repos.origin, final["branch_name"], f"[protocol-0001/{i:02d}]") for i in (1, 2)]
    report(
        "database_restart",
        outage_seconds=round(up_at - down_at, 1),
        health_recovery_seconds=health_seconds,
        job_recovery_seconds=job_seconds,
        change_feed_recovery_seconds=feed_seconds,
        listen_recovery_seconds=listen_seconds,
        run=final["status"],
        job_retries=retries,
        execution_agents=executions,
        commits_per_step=commits,
        workers_beating=beating,
    )
    assert final["status"] == "completed", final.get("last_error")
    assert commits == [1, 1]


@pytest.mark.parametrize("process", ["worker", "serve"])
async def test_workers_listen_and_work_again_after_a_database_restart(
    process, private_postgres, tmp_path, fleets
):
    """The only worker, `tasksgodzilla worker`'s or the one `tasksgodzilla serve` runs in its event
    loop, LISTENs on every queue again after a restart and does the next job: a process never lives
    on without its worker."""
    server, url = private_postgres
    settings = fault_settings(tmp_path)
    env = fault_environment(settings, url)
    fleet: Fleet = fleets(env)
    proc = fleet.worker("w1") if process == "worker" else fleet.server(free_port(), "api")
    await wait_for(lambda: listening(url, "-infinity", 1), seconds=60, what="every queue's LISTEN")
    offset = proc.log.stat().st_size
    await asyncio.to_thread(server.stop)
    # Down until the process has noticed (its pool says it cannot reconnect): its listeners, in the
    # same event loop, have then met the outage too.
    await wait_for(lambda: _noticed(proc, offset), seconds=30, what="the outage noticed")
    await asyncio.to_thread(server.start)
    up_at = time.monotonic()
    restarted = await wait_for(lambda: _started_at(url), seconds=30, what="a probe")
    await wait_for(lambda: listening(url, restarted, 1), seconds=60, what="every queue's LISTEN again")
    listen_seconds = round(time.monotonic() - up_at, 2)
    async with open_runtime(settings, url, environ=env) as (_, svc):
        project = await projects.register_project(
            svc, name="demo", local_path=str(make_repos(tmp_path).local)
        )

        async def set_up() -> bool:
            fleet.check()
            return await project_ready(svc, project.id)

        await wait_for(set_up, seconds=60, what=f"{process}'s worker to set the project up")
    report(
        f"{process}_after_restart",
        listen_seconds=listen_seconds,
        job_done_seconds=round(time.monotonic() - up_at, 2),
        restarts=proc.log.read_text().count("starting it again"),
    )


async def test_a_job_running_through_a_restart_stays_with_its_worker(private_postgres, tmp_path, fleets):
    """Step 1's agent is held (AGENT_GATE) while the server restarts. The worker running its job must
    heartbeat again once the server is back: a worker that stopped instead (its LISTEN could not
    reconnect) would wait for the job without a heartbeat, and another worker would take the job
    over, running a second agent on the step, while the first still works."""
    server, url = private_postgres
    repos = make_repos(tmp_path)
    gate = Gate(tmp_path / "gate")
    gate.hold(1)
    settings = fault_settings(tmp_path, stalled_after_seconds=15)  # longer than the outage
    env = fault_environment(settings, url, AGENT_PLAN_STEPS="1", AGENT_GATE=str(gate.folder))
    fleet: Fleet = fleets(env)
    for n in range(1, WORKERS + 1):
        fleet.worker(f"w{n}")
    async with open_runtime(settings, url, environ=env) as (_, svc):
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), seconds=60, what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Held")
        await planning.start_protocol(svc, run.id)
        await wait_for(lambda: gate.waiting(1), seconds=60, what="step 1's agent at the gate")
        holder = fleet.named(next(a.owner for a in fleet.agents() if a.stage == "execution"))
        worker_id = await probe_value(url, HOLDER)
        offset = holder.log.stat().st_size
        await asyncio.to_thread(server.stop)
        await wait_for(lambda: _noticed(holder, offset), seconds=30, what="the outage noticed")
        await asyncio.to_thread(server.start)
        up_at = time.monotonic()
        restarted = await wait_for(lambda: _started_at(url), seconds=30, what="a probe")
        await wait_for(
            lambda: probe_value(url, BEAT_SINCE, {"id": worker_id, "since": restarted}),
            seconds=30,
            what=f"{holder.name}'s worker to heartbeat again while its job runs",
        )
        beat_seconds = round(time.monotonic() - up_at, 2)
        gate.release(1)
        await wait_for(lambda: run_settled(svc, run.id), seconds=90, what="the run to settle")
        fleet.check()
        (run,) = await read_runs(svc, [run.id])
        history = await read_events(svc, run.id)
    executions = sum(e.event_type == "agent.started" and e.payload["stage"] == "execution" for e in history)
    report(
        "job_through_restart",
        heartbeat_back_seconds=beat_seconds,
        run=run.status.value,
        executions=executions,
    )
    assert run.status.value == "completed", run.last_error
    assert executions == 1, "the step's job was taken over while its agent worked"


HOLDER = "SELECT worker_id FROM procrastinate_jobs WHERE task_name = 'execute_step_job' AND status = 'doing'"
BEAT_SINCE = "SELECT last_heartbeat > %(since)s FROM procrastinate_workers WHERE id = %(id)s"


def _job_ended(proc: Proc, offset: int) -> bool:
    """Procrastinate logged the outcome of a step's job (one line) since `offset`."""
    lines = proc.log.read_text()[offset:].splitlines()
    return any("execute_step_job[" in line and "ended with status" in line for line in lines)


def _noticed(proc: Proc, offset: int) -> bool:
    return "error connecting in" in proc.log.read_text()[offset:]


async def _started_at(url: str) -> Any:
    return await probe_value(url, "SELECT pg_postmaster_start_time()")


async def _answers(api: Api, status: int) -> bool:
    return await api.health() == status


async def _beating(url: str, interval: float, expected: int) -> int | None:
    """How many Procrastinate workers heartbeat now, once that is `expected` (stale rows of replaced
    ones aside)."""
    fresh = await probe_value(
        url,
        "SELECT count(*) FROM procrastinate_workers"
        " WHERE last_heartbeat > now() - make_interval(secs => %(s)s)",
        {"s": 3 * interval + 1},
    )
    return fresh if fresh == expected else None


async def test_a_worker_stops_when_told_while_the_database_is_down(private_postgres, tmp_path, fleets):
    """SIGTERM during an outage: the Procrastinate workers' graceful stop fails (they cannot
    unregister), and that failure must still end them, not count as stopping by themselves (which
    would start them again, forever)."""
    server, url = private_postgres
    fleet: Fleet = fleets(fault_environment(fault_settings(tmp_path), url))
    worker = fleet.worker("w1")
    await wait_for(lambda: listening(url, "-infinity", 1), seconds=60, what="every queue's LISTEN")
    offset = worker.log.stat().st_size
    await asyncio.to_thread(server.stop)
    await wait_for(lambda: _noticed(worker, offset), seconds=30, what="the outage noticed")
    worker.signal(signal.SIGTERM)
    at = time.monotonic()
    await wait_for(lambda: not worker.alive(), seconds=90, what="the worker to exit")
    report("stop_while_down", seconds=round(time.monotonic() - at, 1), status=worker.popen.returncode)
    assert worker.popen.returncode == 0, worker.tail()
