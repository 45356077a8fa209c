"""One CI failure reported 50 times at once to `tasksgodzilla serve`: applied exactly once.

A run waits on step 2's commit. 50 concurrent `POST /webhooks/github`, each validly signed, say CI
failed on that commit: either as one delivery (the same X-GitHub-Delivery, as a forge's retries
send it) or as 50 distinct deliveries of the same result (redeliveries with new ids, several
integrations reporting one outcome). Two processes apply deliveries (the API's own worker and a
`tasksgodzilla worker`). Exactly one `ci.failed` event, one move of the step and of the run to
`blocked`, whatever the interleaving.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest

from app.store.database import Database
from tests.support.ci_runs import SECOND, SECRET, github_request, payload, seed_run
from tests.support.fault_probes import (
    Api,
    api_events,
    api_of,
    probe_value,
)
from tests.support.faults import (
    Fleet,
    fault_environment,
    fault_settings,
    free_port,
    report,
    unharmed,
)
from tests.support.workflow import wait_for

COPIES = 50
UNAPPLIED = (
    "SELECT count(*) FROM webhook_deliveries WHERE outcome IS NULL"
    " OR EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
)


@pytest.mark.parametrize(
    "distinct",
    [
        pytest.param(False, id="one-delivery-50-times"),
        pytest.param(True, id="50-deliveries-of-one-result"),
    ],
)
async def test_one_ci_result_sent_50_times_is_applied_once(database_url, tmp_path, fleets, distinct):
    database = Database(database_url, pool_size=2)
    try:
        seeded = await seed_run(database)
    finally:
        await database.dispose()
    settings = fault_settings(
        tmp_path,
        github_webhook_secret=SECRET,
        auto_qa_on_ci=False,
        auto_qa_after_exec=False,  # the seeded step stays waiting for QA: nothing else moves it
        fix_ci_attempts=0,
        worker_concurrency=4,
        # Deliveries of one repository are applied one at a time (their jobs share a lock), and a job
        # waiting on a lock is only picked up at a poll: a short poll keeps 50 of them quick.
        worker_poll_seconds=0.2,
    )
    fleet: Fleet = fleets(fault_environment(settings, database_url))
    port = free_port()
    api_proc = fleet.server(port)  # with its in-process worker
    fleet.worker("w1")
    body = payload("github", "status.success", sha=SECOND)
    body["state"] = "failure"
    one_id = str(uuid.uuid4())
    async with api_of(api_proc, port) as api:
        started = time.monotonic()
        statuses = await asyncio.gather(
            *(_deliver(api, body, None if distinct else one_id) for _ in range(COPIES))
        )
        await wait_for(lambda: _all_applied(database_url), seconds=90, what="every delivery applied")
        applied_in = time.monotonic() - started
        fleet.check()
        history = await api_events(api, seeded.run.id)
        run = await api.ok("GET", f"/protocols/{seeded.run.id}")
        step = await api.ok("GET", f"/steps/{seeded.steps[1].id}")
    kinds = Counter(e["event_type"] for e in history)
    answers = Counter(statuses)
    report(
        "webhook_storm_distinct" if distinct else "webhook_storm_same_delivery",
        copies=COPIES,
        answers=dict(answers),
        ci_events=sum(n for kind, n in kinds.items() if kind.startswith("ci.")),
        step_blocked=kinds["step.blocked"],
        run_blocked=kinds["protocol.blocked"],
        step_versions=step["version"] - seeded.steps[1].version,
        seconds=round(applied_in, 1),
    )
    assert answers == ({202: COPIES} if distinct else {202: 1, 200: COPIES - 1})
    assert (run["status"], step["status"], step["ci_status"]) == ("blocked", "blocked", "failed")
    once = (kinds["ci.failed"], kinds["step.blocked"], kinds["protocol.blocked"])
    unharmed(once == (1, 1, 1), f"ci.failed, step.blocked, protocol.blocked: {once} times")
    writes = step["version"] - seeded.steps[1].version
    unharmed(writes == 1, f"{writes} writes to the step, for one CI result")


async def _deliver(api: Api, body: dict, delivery: str | None) -> int:
    request = github_request("status", body, delivery=delivery)
    status, _ = await api.call("POST", "/webhooks/github", raw=request)
    return status


async def _all_applied(url: str) -> bool:
    return await probe_value(url, UNAPPLIED) == 0
