"""`pg_terminate_backend` on every connection of the workers (and the API) in the middle of a run.

`tasksgodzilla serve` (without its in-process worker) and two `tasksgodzilla worker` processes run a
two-step protocol. Whenever a step's execution agent starts, the test ends every backend of the
database but its own probes: the job queue's pool, the LISTEN connections, SQLAlchemy's pool and the
API's change feed. The server itself stays up.

Required, as after a restart: every process reconnects by itself (the workers LISTEN again), no job
stays `doing`, and the run completes with one commit per step.
"""

from __future__ import annotations

import time

from tests.support.fault_probes import (
    api_events,
    api_of,
    api_run_settled,
    no_job_doing,
    probe,
    probe_value,
    start_run,
)
from tests.support.faults import (
    PROBE_APP,
    Fleet,
    execution_agent,
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
LISTENING = (
    "SELECT count(*) FILTER (WHERE query LIKE 'LISTEN %%procrastinate%%'),"
    " count(*) FILTER (WHERE application_name = 'tasksgodzilla-changes')"
    " FROM pg_stat_activity WHERE datname = current_database() AND backend_start > %(since)s"
)
SUCCEEDED = "SELECT count(*) FROM procrastinate_events WHERE type = 'succeeded'"


async def test_terminating_every_backend_mid_run_loses_nothing(database_url, tmp_path, fleets):
    repos = make_repos(tmp_path)
    settings = fault_settings(tmp_path, run_worker=False, stalled_after_seconds=10)  # see the restart test
    env = fault_environment(settings, database_url, AGENT_PLAN_STEPS="2", AGENT_SLEEP="2")
    fleet: Fleet = fleets(env)
    port = free_port()
    api_proc = fleet.server(port)
    fleet.worker("w1")
    fleet.worker("w2")
    terminated, recoveries = [], []
    async with api_of(api_proc, port) as api:
        run = await start_run(api, fleet, repos.local, "Terminate")
        for step in (1, 2):
            seen = {a.pid for a in fleet.agents()}
            await wait_for(
                lambda s=seen: (a := execution_agent(fleet)) is not None and a.pid not in s,
                seconds=60,
                what=f"step {step}'s agent",
            )
            since = await probe_value(database_url, "SELECT clock_timestamp()")
            done_before = await probe_value(database_url, SUCCEEDED)
            ended = await probe(database_url, TERMINATE, {"probe": PROBE_APP})
            terminated.append(len(ended or []))
            at = time.monotonic()
            await wait_for(
                lambda b=done_before: _above(database_url, SUCCEEDED, b), seconds=60, what="a job done again"
            )
            recoveries.append(time.monotonic() - at)
            # Each worker's Procrastinate LISTEN and the API's change feed, on new connections.
            await wait_for(
                lambda s=since: _rows(database_url, LISTENING, {"since": s}, (2, 1)),
                seconds=60,
                what="two worker LISTENs and the change feed, reconnected",
            )
        final = await wait_for(lambda: api_run_settled(api, run["id"]), seconds=120, what="the run to end")
        await wait_for(lambda: no_job_doing(database_url), seconds=60, what="no job left doing")
        fleet.check()
        retries = sum(e["event_type"] == "job.retrying" for e in await api_events(api, run["id"]))
    commits = [tagged_commits(repos.origin, final["branch_name"], f"[protocol-0001/{i:02d}]") for i in (1, 2)]
    report(
        "backend_terminate",
        rounds=len(terminated),
        backends_terminated=terminated,
        job_recovery_seconds=[round(r, 2) for r in recoveries],
        run=final["status"],
        job_retries=retries,
        commits_per_step=commits,
    )
    assert min(terminated) >= 5, "the workers' pools, their LISTENs, the API's pool and its feed"
    assert final["status"] == "completed", final.get("last_error")
    assert commits == [1, 1]


async def _above(url: str, query: str, floor: int) -> bool:
    value = await probe_value(url, query)
    return value is not None and value > floor


async def _rows(url: str, query: str, params: dict, expected: tuple) -> bool:
    rows = await probe(url, query, params)
    return bool(rows) and rows[0] == expected  # type: ignore[index]
