"""`pg_terminate_backend` on every connection of the workers (and the API) in the middle of a run.

`tasksgodzilla serve` (without its in-process worker) and two `tasksgodzilla worker` processes run a
two-step protocol. Each step's execution agent is held (AGENT_GATE) while the test ends every backend
of the database but its own probes: the job queue's pool, the LISTEN connections, SQLAlchemy's pool
and the API's change feed; then it lets the agent finish. The server itself stays up.

Required, as after a restart: every process reconnects by itself (each Procrastinate worker LISTENs
again), the step's job is done, no job stays `doing`, and the run completes with one commit per step.
"""

from __future__ import annotations

import time

from tests.support.fault_probes import (
    JOBS_DONE,
    JOBS_RETRIED,
    above,
    api_of,
    api_run_settled,
    listening,
    listens,
    no_job_doing,
    probe,
    probe_value,
    start_run,
)
from tests.support.faults import (
    PROBE_APP,
    Fleet,
    Gate,
    fault_environment,
    fault_settings,
    free_port,
    report,
    tagged_commits,
)
from tests.support.workflow import make_repos, wait_for

TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> %(probe)s"
)
FEED = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE backend_start > %(since)s AND application_name = 'tasksgodzilla-changes'"
)
WORKERS = 2


async def test_terminating_every_backend_mid_run_loses_nothing(database_url, tmp_path, fleets):
    repos = make_repos(tmp_path)
    gate = Gate(tmp_path / "gate")
    gate.hold(1, 2)
    settings = fault_settings(tmp_path, run_worker=False, stalled_after_seconds=10)  # see the restart test
    env = fault_environment(settings, database_url, AGENT_PLAN_STEPS="2", AGENT_GATE=str(gate.folder))
    fleet: Fleet = fleets(env)
    port = free_port()
    api_proc = fleet.server(port)
    for n in range(1, WORKERS + 1):
        fleet.worker(f"w{n}")
    terminated, relistened, job_seconds = [], [], []
    async with api_of(api_proc, port) as api:
        run = await start_run(api, fleet, repos.local, "Terminate")
        for step in (1, 2):
            await wait_for(lambda s=step: gate.waiting(s), seconds=60, what=f"step {step}'s agent")
            since = await probe_value(database_url, "SELECT clock_timestamp()")
            done_before = await probe_value(database_url, JOBS_DONE)
            ended = await probe(database_url, TERMINATE, {"probe": PROBE_APP})
            terminated.append(len(ended or []))
            at = time.monotonic()
            # Each Procrastinate worker's LISTEN (a job worker and a duties worker per process) and
            # the API's change feed, on new connections, while the agent is still held.
            await wait_for(lambda s=since: listening(database_url, s, WORKERS), seconds=60, what="LISTENs")
            await wait_for(lambda s=since: above(database_url, FEED, 0, {"since": s}), what="the feed")
            relistened.append((await listens(database_url, since), round(time.monotonic() - at, 2)))
            gate.release(step)
            at = time.monotonic()
            await wait_for(lambda b=done_before: above(database_url, JOBS_DONE, b), what="job done")
            job_seconds.append(round(time.monotonic() - at, 2))
        final = await wait_for(lambda: api_run_settled(api, run["id"]), seconds=120, what="the run to end")
        await wait_for(lambda: no_job_doing(database_url), seconds=180, what="no job left doing")  # loaded CI
        fleet.check()
        retries = await probe_value(database_url, JOBS_RETRIED)
    commits = [tagged_commits(repos.origin, final["branch_name"], f"[protocol-0001/{i:02d}]") for i in (1, 2)]
    report(
        "backend_terminate",
        rounds=len(terminated),
        backends_terminated=terminated,
        listens_and_seconds=relistened,
        job_done_seconds_after_release=job_seconds,
        run=final["status"],
        job_retries=retries,
        commits_per_step=commits,
    )
    assert min(terminated) >= 5, "the workers' pools, their LISTENs, the API's pool and its feed"
    assert final["status"] == "completed", final.get("last_error")
    assert commits == [1, 1]
