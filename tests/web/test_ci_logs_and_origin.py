"""The failed CI job's log reaches the fix prompt (its name, its end, secrets redacted, fetched by the
job that applies the delivery); the original project's report.sh is accepted with `protocol_run_id`
(applied to the run's head step, recorded so) and refused without it, saying how to switch."""

from __future__ import annotations

import json

import pytest

from app.forges.signatures import github_signature
from app.services import webhooks
from app.services.rework_context import rework_context
from app.store import events, steps
from app.web.keys import SERVICES
from tests.support.ci_runs import GITLAB_SECRET, SECOND, SECRET, payload, seed_run
from tests.support.fake_forge import GITHUB_TOKEN, running_fake_forge
from tests.support.fake_forge_extras import CiJob
from tests.web.test_reviews import app_client, deliver

NOISE = "".join(f"collecting tests ... line {i}\n" for i in range(400))
LOG = (
    "\x1b[32m2024-05-15T16:00:00Z\x1b[0m Run pytest\n" + NOISE
    + f"E   requests.exceptions.HTTPError: 401 for https://x:{GITHUB_TOKEN}@api.github.com\n"
    + "FAILED tests/test_login.py::test_empty_password - AssertionError\n"
    + "##[error]Process completed with exit code 1.\n"
)  # fmt: skip


@pytest.fixture
async def forge():
    async with running_fake_forge(head_sha=lambda branch: SECOND) as running:
        yield running


async def _fix_requested(database, run_id):
    async with database.read() as conn:
        return await events.list_page(conn, protocol_run_id=run_id, event_types=["ci.fix_requested"])


@pytest.mark.parametrize("provider", ["github", "gitlab"])
async def test_the_failed_job_s_name_and_log_tail_reach_the_fix_prompt_redacted(
    database_url, database, aiohttp_client, forge, provider
):
    seeded = await seed_run(database, ci_provider=provider)
    client = await app_client(aiohttp_client, database_url, forge, fix_ci_attempts=1, ci_log_tail_chars=600)
    forge.extras.add_ci_jobs(
        SECOND, CiJob("lint", "all good", conclusion="success"), CiJob("test (3.11)", LOG)
    )
    if provider == "github":
        failing = payload("github", "check_suite.completed", sha=SECOND)
        failing["check_suite"]["conclusion"] = "failure"
        await deliver(client, "github", "check_suite", failing, "d-fail")
    else:
        failing = payload("gitlab", "pipeline.push", sha=SECOND)
        failing["object_attributes"]["status"] = "failed"
        await deliver(client, "gitlab", "Pipeline Hook", failing, "d-fail")

    [fix] = await _fix_requested(database, seeded.run.id)
    assert fix.payload["failed_job"] == "test (3.11)"
    tail = fix.payload["log_tail"]
    assert len(tail) <= 600
    assert "FAILED tests/test_login.py::test_empty_password" in tail
    assert "collecting tests ... line 0\n" not in tail  # only the end
    assert GITHUB_TOKEN not in tail
    assert "https://x:********@api.github.com" in tail
    assert "\x1b" not in tail
    if provider == "github":
        # The log lives on a storage host: the forge's token never goes there.
        [seen] = forge.extras.log_requests
        assert "Authorization" not in seen
        paths = [c.path for c in forge.calls("GET")]
        assert "/repos/acme/shop/actions/runs" in paths
        assert "/repos/acme/shop/actions/runs/100/jobs" in paths
    else:
        assert any(c.path.endswith("/trace") for c in forge.calls("GET"))

    async with database.read() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
        prompt = (await rework_context(conn, client.app[SERVICES], step)).instructions
    assert "## The failed CI job: test (3.11)" in prompt
    assert "FAILED tests/test_login.py::test_empty_password" in prompt
    assert GITHUB_TOKEN not in prompt


async def test_without_a_failed_job_the_fix_goes_ahead_and_says_why(
    database_url, database, aiohttp_client, forge
):
    seeded = await seed_run(database)
    client = await app_client(aiohttp_client, database_url, forge, fix_ci_attempts=1)
    failing = payload("github", "check_suite.completed", sha=SECOND)
    failing["check_suite"]["conclusion"] = "failure"
    await deliver(client, "github", "check_suite", failing, "d-fail")
    [fix] = await _fix_requested(database, seeded.run.id)
    assert fix.payload["log_problem"] == f"the forge lists no failed CI job on {SECOND[:12]}"


# --- the original project's scripts/ci/report.sh ---------------------------------------------------

ORIGIN_GITHUB = {
    "state": "success",
    "branches": [{"name": "0001-add-login"}],
    "target_url": "",
    "ref": "0001-add-login",
}
ORIGIN_GITLAB = {
    "object_kind": "pipeline",
    "object_attributes": {"status": "failure", "ref": "0001-add-login"},
}


def _origin_github(body: dict) -> dict:
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "status",
        "X-Hub-Signature-256": github_signature(SECRET, raw),
    }
    return {"data": raw, "headers": headers}


async def test_the_origin_script_s_report_is_applied_to_the_run_s_head_step(
    database_url, database, aiohttp_client, forge
):
    seeded = await seed_run(database)
    client = await app_client(aiohttp_client, database_url, forge)
    response = await client.post(
        f"/webhooks/github?protocol_run_id={seeded.run.id}", **_origin_github(ORIGIN_GITHUB)
    )
    answer = await response.json()
    assert response.status == 202, answer
    await webhooks.apply_delivery(client.app[SERVICES], answer["delivery"])
    async with database.read() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
        found = await events.list_page(
            conn, protocol_run_id=seeded.run.id, event_types=["ci.mapped_to_head", "ci.passed"]
        )
    assert step.ci_status == "passed"
    assert [e.event_type for e in found] == ["ci.mapped_to_head", "ci.passed"]
    assert found[0].payload["sha"] == SECOND
    assert found[0].step_run_id == step.id
    assert found[1].payload["source"] == "origin-report"


async def test_the_origin_script_s_gitlab_failure_blocks_the_head_step(
    database_url, database, aiohttp_client, forge
):
    seeded = await seed_run(database, ci_provider="gitlab")
    client = await app_client(aiohttp_client, database_url, forge)
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Pipeline Hook",
        "X-Gitlab-Token": GITLAB_SECRET,
    }
    response = await client.post(
        f"/webhooks/gitlab?protocol_run_id={seeded.run.id}", data=json.dumps(ORIGIN_GITLAB), headers=headers
    )
    answer = await response.json()
    assert response.status == 202, answer
    await webhooks.apply_delivery(client.app[SERVICES], answer["delivery"])
    async with database.read() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
    assert (step.status, step.ci_status) == ("blocked", "failed")


async def test_the_origin_script_without_a_run_id_is_refused_saying_how_to_switch(
    database_url, database, aiohttp_client, forge
):
    await seed_run(database)
    client = await app_client(aiohttp_client, database_url, forge)
    response = await client.post("/webhooks/github", **_origin_github(ORIGIN_GITHUB))
    assert response.status == 422
    body = await response.json()
    assert "scripts/ci/report.sh" in json.dumps(body)
    assert "protocol_run_id" in json.dumps(body)
