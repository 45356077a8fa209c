"""What deliveries do once a worker applies them: the step whose commit CI tested, and nothing else."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from app.config import Settings
from app.domain.ci import Provider
from app.services import webhooks
from app.store import deliveries, events, protocols, steps
from app.store.transitions import move_protocol, move_step
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.ci_runs import (
    FIRST,
    GITLAB_SECRET,
    OTHER,
    SECOND,
    SECRET,
    applied,
    github_request,
    gitlab_request,
    payload,
    seed_run,
    statuses,
)

# No QA after execution: these runs have no repository for a QA agent to read; CI alone moves them.
BASE = {
    "github_webhook_secret": SECRET,
    "gitlab_webhook_token": GITLAB_SECRET,
    "auto_qa_after_exec": False,
    "scheduler_interval_seconds": 600,
}


@pytest.fixture
def make_client(aiohttp_client):
    async def make(database_url, **settings):
        return await aiohttp_client(create_app(Settings(**{**BASE, **settings}), database_url))

    return make


async def _history(database, run_id: int) -> list[str]:
    async with database.read() as conn:
        return [e.event_type for e in await events.list_page(conn, protocol_run_id=run_id, limit=500)]


async def _post_github(client, event: str, body: dict, delivery: str) -> int:
    response = await client.post("/webhooks/github", **github_request(event, body, delivery=delivery))
    return response.status


async def test_ci_failure_blocks_the_step_whose_commit_it_tested_and_its_run(
    database_url, database, make_client
):
    seeded = await seed_run(database)
    client = await make_client(database_url)
    body = payload("github", "check_suite.completed", sha=SECOND)
    body["check_suite"]["conclusion"] = "failure"
    assert await _post_github(client, "check_suite", body, "d-fail") == 202
    delivery = await applied(database, "github", "d-fail")
    assert (delivery.outcome, delivery.step_run_id) == ("applied", seeded.steps[1].id)
    assert await statuses(database, seeded) == ("blocked", [("completed", None), ("blocked", "failed")])
    history = await _history(database, seeded.run.id)
    assert history[-3:] == ["step.blocked", "ci.failed", "protocol.blocked"]
    async with database.read() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
        failed = (await events.list_page(conn, step_run_id=step.id, event_types=["ci.failed"]))[0]
    assert step.last_error == "CI failed (GitHub Actions): check suite GitHub Actions failure"
    assert failed.payload["delivery"] == "d-fail"
    assert failed.payload["sha"] == SECOND


async def test_a_status_for_an_older_commit_changes_nothing(database_url, database, make_client):
    seeded = await seed_run(database)
    client = await make_client(database_url)
    body = payload("github", "status.success", sha=FIRST, state="failure")
    assert await _post_github(client, "status", body, "d-old") == 202
    delivery = await applied(database, "github", "d-old")
    assert delivery.outcome == "ignored"
    assert "older commit" in delivery.detail
    assert await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", None)])
    assert (await _history(database, seeded.run.id))[-1] == "webhook.ignored"


@pytest.mark.parametrize(
    ("changes", "detail", "event_on_run"),
    [
        ({"sha": OTHER}, "is not the commit of any step", True),
        ({"sha": SECOND, "branch": "feature/other"}, "no protocol run on branch feature/other", False),
        ({"sha": SECOND, "name": "acme/elsewhere"}, "no project is github repository acme/elsewhere", False),
    ],
)
async def test_unknown_commits_branches_and_repositories_are_recorded_and_ignored(
    database_url, database, make_client, changes, detail, event_on_run
):
    seeded = await seed_run(database)
    client = await make_client(database_url)
    body = payload(
        "github", "status.success", state="failure", **{k: v for k, v in changes.items() if k != "name"}
    )
    if "name" in changes:
        body["repository"]["full_name"] = changes["name"]
    assert await _post_github(client, "status", body, "d-unknown") == 202
    delivery = await applied(database, "github", "d-unknown")
    assert delivery.outcome == "ignored"
    assert detail in delivery.detail
    assert await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", None)])
    assert ((await _history(database, seeded.run.id))[-1] == "webhook.ignored") is event_on_run


async def test_a_forks_check_suite_never_moves_a_run(database_url, database, make_client):
    seeded = await seed_run(database)
    client = await make_client(database_url)
    body = payload("github", "check_suite.from_fork", sha=SECOND)  # our branch, our head commit
    assert await _post_github(client, "check_suite", body, "d-fork") == 200
    assert (await applied(database, "github", "d-fork")).outcome == "ignored"
    await asyncio.sleep(0.5)
    assert await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", None)])
    async with database.read() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'default'")
        )
    assert count == 0  # nothing was even queued (the periodic duties' jobs aside)


async def test_the_same_delivery_twice_at_once_acts_once(database_url, database, make_client):
    seeded = await seed_run(database)
    client = await make_client(database_url)
    body = payload("github", "workflow_run.completed", sha=SECOND)
    request = github_request("workflow_run", body, delivery="d-twice")
    first, second = await asyncio.gather(
        client.post("/webhooks/github", **request), client.post("/webhooks/github", **request)
    )
    assert sorted([first.status, second.status]) == [200, 202]
    await applied(database, "github", "d-twice")
    await asyncio.sleep(0.5)  # a second application, if there were one, would have happened by now
    assert (await _history(database, seeded.run.id)).count("ci.failed") == 1


async def test_ci_success_records_it_and_never_skips_qa(database_url, database, make_client):
    seeded = await seed_run(database)
    client = await make_client(database_url)
    assert (
        await _post_github(client, "status", payload("github", "status.success", sha=SECOND), "d-ok") == 202
    )
    await applied(database, "github", "d-ok")
    assert await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", "passed")])
    async with database.read() as conn:
        passed = await events.list_page(conn, protocol_run_id=seeded.run.id, event_types=["ci.passed"])
    assert "still waits for QA" in passed[0].message


async def test_ci_success_queues_qa_when_configured(database_url, database, make_client):
    seeded = await seed_run(database)
    client = await make_client(database_url, run_worker=False, auto_qa_on_ci=True)
    assert (
        await _post_github(client, "status", payload("github", "status.success", sha=SECOND), "d-qa") == 202
    )
    async with database.read() as conn:
        found = await deliveries.find(conn, Provider.GITHUB, "d-qa")
    assert found is not None
    await webhooks.apply_delivery(client.app[SERVICES], found.id)  # what the worker's job does
    async with database.read() as conn:
        jobs = (
            await conn.execute(
                text(
                    "SELECT task_name, args FROM procrastinate_jobs WHERE queue_name = 'default' ORDER BY id"
                )
            )
        ).all()
    assert [(name, args) for name, args in jobs] == [
        ("apply_webhook_job", {"delivery_id": found.id}),
        ("run_quality_job", {"step_run_id": seeded.steps[1].id}),
    ]
    assert await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", "passed")])
    assert await webhooks.apply_delivery(client.app[SERVICES], found.id) is None  # applied once only


async def test_a_gitlab_merge_request_pipeline_is_found_by_its_mr_number(database_url, database, make_client):
    seeded = await seed_run(database, ci_provider="gitlab")
    async with database.transaction() as conn:
        await protocols.update_fields(conn, seeded.run.id, expected_version=seeded.run.version, pr_number=3)
    client = await make_client(database_url)
    body = payload("gitlab", "pipeline.merge_request", sha=SECOND) | {"merge_request": None}
    request = gitlab_request("Pipeline Hook", body, delivery="gl-mr")
    assert (await client.post("/webhooks/gitlab", **request)).status == 202
    delivery = await applied(database, "gitlab", "gl-mr")
    assert delivery.step_run_id == seeded.steps[1].id
    assert await statuses(database, seeded) == ("blocked", [("completed", None), ("blocked", "failed")])
    async with database.read() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
    assert "pytest (script_failure)" in (step.last_error or "")


async def test_a_merged_pull_request_completes_its_run(database_url, database, make_client):
    seeded = await seed_run(database)
    async with database.transaction() as conn:
        await protocols.update_fields(conn, seeded.run.id, expected_version=seeded.run.version, pr_number=2)
    client = await make_client(database_url)
    other = payload("github", "pull_request.closed", number=5)
    other["pull_request"]["number"] = 5
    assert await _post_github(client, "pull_request", other, "d-other-pr") == 202
    assert "not the run's own #2" in (await applied(database, "github", "d-other-pr")).detail
    assert (await statuses(database, seeded))[0] == "running"
    merged = payload("github", "pull_request.closed", sha=SECOND)
    assert await _post_github(client, "pull_request", merged, "d-merged") == 202
    assert (await applied(database, "github", "d-merged")).outcome == "applied"
    assert (await statuses(database, seeded))[0] == "completed"
    assert (await _history(database, seeded.run.id))[-2:] == ["pr.merged", "protocol.completed"]


async def test_a_gitlab_merge_completes_the_run(database_url, database, make_client):
    seeded = await seed_run(database, ci_provider="gitlab")
    client = await make_client(database_url)
    request = gitlab_request("Merge Request Hook", payload("gitlab", "merge_request.merge"), delivery="gl-m")
    assert (await client.post("/webhooks/gitlab", **request)).status == 202
    await applied(database, "gitlab", "gl-m")
    assert (await statuses(database, seeded))[0] == "completed"


async def test_fix_ci_runs_are_bounded_per_project(database_url, database, make_client):
    seeded = await seed_run(database)
    async with database.transaction() as conn:
        await conn.execute(text("UPDATE projects SET fix_ci_attempts = 1"))
    client = await make_client(database_url, run_worker=False)
    svc = client.app[SERVICES]

    async def fail(delivery: str) -> None:
        body = payload("github", "status.success", sha=SECOND, state="failure")
        assert await _post_github(client, "status", body, delivery) == 202
        async with database.read() as conn:
            found = await deliveries.find(conn, Provider.GITHUB, delivery)
        assert found is not None
        await webhooks.apply_delivery(svc, found.id)

    await fail("d-fix-1")
    assert await statuses(database, seeded) == ("running", [("completed", None), ("pending", "failed")])
    history = await _history(database, seeded.run.id)
    assert history[-6:] == [
        "step.blocked", "ci.failed", "protocol.blocked",
        "step.pending", "protocol.running", "ci.fix_requested",
    ]  # fmt: skip
    async with database.read() as conn:
        jobs = await conn.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'execute_step_job'")
        )
    assert jobs == 1
    # The agent's second attempt fails CI again (simulated: same commit back to QA): no third try.
    async with database.transaction() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
        step = await move_step(conn, step.id, "running", expected_version=step.version)
        await move_step(conn, step.id, "needs_qa", expected_version=step.version)
    await fail("d-fix-2")
    assert await statuses(database, seeded) == ("blocked", [("completed", None), ("blocked", "failed")])
    assert (await _history(database, seeded.run.id)).count("ci.fix_requested") == 1


async def test_a_blocked_run_is_not_completed_by_another_branchs_merge(database_url, database, make_client):
    seeded = await seed_run(database)
    async with database.transaction() as conn:
        run = await protocols.get(conn, seeded.run.id)
        await move_protocol(conn, run.id, "blocked", expected_version=run.version)
    client = await make_client(database_url)
    body = payload("github", "pull_request.closed", branch="0002-something-else")
    assert await _post_github(client, "pull_request", body, "d-branch") == 202
    assert (await applied(database, "github", "d-branch")).outcome == "ignored"
    assert (await statuses(database, seeded))[0] == "blocked"
