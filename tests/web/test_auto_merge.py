"""Auto-merge: a run whose policy says `auto_merge` has its PR/MR merged by the service once every step
is completed, the PR/MR is published at the head and CI passed on it; through a queued job, with the
head's SHA as the forge's guard, once per head. The merge webhook then completes the run as always."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.config import Settings
from app.domain.statuses import StepStatus as S
from app.forges.github_client import GitHubClient
from app.forges.gitlab_client import GitLabClient
from app.services.auto_merge import auto_merge
from app.services.policy import set_project_policy
from app.services.progress import defer_auto_merge
from app.store import events, protocols, steps
from app.store.transitions import move_step
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.ci_runs import (
    BRANCH,
    GITLAB_SECRET,
    SECOND,
    SECRET,
    applied,
    github_request,
    gitlab_request,
    payload,
    seed_run,
)
from tests.support.fake_forge import GITHUB_TOKEN, GITLAB_TOKEN, running_fake_forge
from tests.support.workflow import wait_for


@pytest.fixture
async def forge():
    async with running_fake_forge(head_sha=lambda branch: SECOND) as running:
        yield running


async def _published(database, forge, *, provider="github", auto_merge=True):
    """A run on BRANCH with both steps completed (the head SECOND) and its PR/MR #1 open at SECOND."""
    seeded = await seed_run(database, ci_provider=provider)
    if provider == "github":
        client = GitHubClient(forge.url, "acme/shop", GITHUB_TOKEN)
    else:
        client = GitLabClient(f"{forge.url}/api/v4", "acme/shop", GITLAB_TOKEN)
    async with client:
        pull = await client.create(branch=BRANCH, base="main", title="Add login", body="")
    async with database.transaction() as conn:
        step = seeded.steps[1]
        await move_step(conn, step.id, S.COMPLETED, expected_version=step.version)
        await protocols.update_fields(
            conn, seeded.run.id, expected_version=seeded.run.version,
            pr_number=pull.number, pr_url=pull.url, published_sha=SECOND,
        )  # fmt: skip
    forge.received.clear()
    return seeded


async def _client(aiohttp_client, database_url, forge, **extra):
    values = {
        "github_webhook_secret": SECRET,
        "gitlab_webhook_token": GITLAB_SECRET,
        "auto_qa_after_exec": False,
        "scheduler_interval_seconds": 600,
        "github_api_url": forge.url,
        "github_token": GITHUB_TOKEN,
        "gitlab_api_url": f"{forge.url}/api/v4",
        "gitlab_token": GITLAB_TOKEN,
    }
    settings = Settings(**(values | extra))
    return await aiohttp_client(create_app(settings, database_url))


async def _allow_auto_merge(client, project_id, allowed=True):
    await set_project_policy(
        client.app[SERVICES], project_id, pack_key="default", overrides={"auto_merge": allowed}
    )


async def _deliver(client, event: str, body: dict, delivery: str, database) -> None:
    response = await client.post("/webhooks/github", **github_request(event, body, delivery=delivery))
    assert response.status == 202, await response.text()
    await applied(database, "github", delivery)


async def _events(database, run_id, *kinds):
    async with database.read() as conn:
        return await events.list_page(conn, protocol_run_id=run_id, event_types=list(kinds), limit=500)


async def _merge_jobs(database) -> int:
    async with database.read() as conn:
        return await conn.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'auto_merge_job'")
        )


def _merges(forge):
    return [c for c in forge.calls("PUT") if c.path.endswith("/merge")]


async def test_ci_passing_on_the_head_merges_at_that_sha_and_the_webhook_completes_the_run(
    database_url, database, aiohttp_client, forge
):
    seeded = await _published(database, forge)
    client = await _client(aiohttp_client, database_url, forge)
    await _allow_auto_merge(client, seeded.project.id)

    await _deliver(client, "status", payload("github", "status.success", sha=SECOND), "d-ci", database)
    [requested] = await wait_for(
        lambda: _events(database, seeded.run.id, "pr.auto_merge_requested"), what="the auto-merge"
    )
    assert requested.payload == {"provider": "github", "number": 1, "sha": SECOND}
    [merge] = _merges(forge)
    assert (merge.path, merge.body) == ("/repos/acme/shop/pulls/1/merge", {"sha": SECOND})
    assert forge.pulls[("acme/shop", 1)]["merged"] is True

    # Another check passing on the same head triggers again: nothing more is asked of the forge.
    suite = payload("github", "check_suite.completed", sha=SECOND)
    await _deliver(client, "check_suite", suite, "d-ci-2", database)
    assert len(await _events(database, seeded.run.id, "ci.passed")) == 2
    assert await _merge_jobs(database) == 1
    assert len(_merges(forge)) == 1

    merged = payload("github", "pull_request.closed", sha=SECOND)
    merged["number"] = merged["pull_request"]["number"] = 1
    await _deliver(client, "pull_request", merged, "d-merged", database)
    async with database.read() as conn:
        assert (await protocols.get(conn, seeded.run.id)).status == "completed"
    history = [e.event_type for e in await _events(database, seeded.run.id, *_KINDS)]
    assert history == ["ci.passed", "pr.auto_merge_requested", "ci.passed", "pr.merged", "protocol.completed"]


_KINDS = ("ci.passed", "ci.failed", "pr.auto_merge_requested", "pr.auto_merge_refused", "pr.merged",
          "protocol.completed", "protocol.blocked")  # fmt: skip


async def test_with_auto_merge_off_nothing_is_merged(database_url, database, aiohttp_client, forge):
    seeded = await _published(database, forge)
    client = await _client(aiohttp_client, database_url, forge)
    await _allow_auto_merge(client, seeded.project.id, allowed=False)
    await _deliver(client, "status", payload("github", "status.success", sha=SECOND), "d-ci", database)
    async with database.read() as conn:
        step = await steps.get(conn, seeded.steps[1].id)
    assert step.ci_status == "passed"
    assert await _merge_jobs(database) == 0  # queued in the delivery's own transaction, or never
    assert _merges(forge) == []


async def test_ci_failing_on_the_head_merges_nothing(database_url, database, aiohttp_client, forge):
    seeded = await _published(database, forge)
    client = await _client(aiohttp_client, database_url, forge)
    await _allow_auto_merge(client, seeded.project.id)
    failing = payload("github", "check_suite.completed", sha=SECOND)
    failing["check_suite"]["conclusion"] = "failure"
    await _deliver(client, "check_suite", failing, "d-fail", database)
    async with database.read() as conn:
        assert (await protocols.get(conn, seeded.run.id)).status == "blocked"
    assert await _merge_jobs(database) == 0
    assert _merges(forge) == []


@pytest.mark.parametrize(
    ("provider", "refusal", "reason"),
    [
        ("github", "checks", 'HTTP 405: Required status check "build" is expected.'),
        ("github", "conflict", "HTTP 405: Pull Request is not mergeable"),
        ("github", "moved", "HTTP 409: Head branch was modified. Review and try the merge again."),
        ("gitlab", "conflict", "HTTP 406: Branch cannot be merged"),
        ("gitlab", "moved", f"HTTP 409: SHA does not match HEAD of source branch: {'e' * 40}"),
    ],
)
async def test_a_refused_merge_is_recorded_and_the_run_waits_for_a_person(
    database_url, database, aiohttp_client, forge, provider, refusal, reason
):
    seeded = await _published(database, forge, provider=provider)
    client = await _client(aiohttp_client, database_url, forge)
    await _allow_auto_merge(client, seeded.project.id)
    pull = forge.pulls[("acme/shop", 1)]
    if refusal == "checks":
        forge.required_checks = ("build",)
    elif refusal == "conflict":
        forge.conflicts.add(("acme/shop", 1))
    elif provider == "github":  # someone pushed to the branch after the run's head
        pull["head"]["sha"] = "e" * 40
    else:
        pull["sha"] = "e" * 40

    if provider == "github":
        await _deliver(client, "status", payload("github", "status.success", sha=SECOND), "d-ci", database)
    else:
        body = payload("gitlab", "pipeline.push", sha=SECOND)
        request = gitlab_request("Pipeline Hook", body, delivery="gl-ci")
        assert (await client.post("/webhooks/gitlab", **request)).status == 202
        await applied(database, "gitlab", "gl-ci")
    [refused] = await wait_for(
        lambda: _events(database, seeded.run.id, "pr.auto_merge_refused"), what="the refusal"
    )
    assert refused.payload == {"provider": provider, "number": 1, "sha": SECOND, "reason": reason}
    assert [c.body for c in _merges(forge)] == [{"sha": SECOND}]
    async with database.read() as conn:
        run = await protocols.get(conn, seeded.run.id)
    assert (run.status, run.pr_number, run.published_sha) == ("running", 1, SECOND)  # awaiting the merge


async def test_a_published_run_whose_head_ci_has_not_passed_is_not_merged(
    database_url, database, aiohttp_client, forge
):
    """The PR/MR opened before CI spoke: neither the trigger nor the job itself merges it."""
    seeded = await _published(database, forge)
    client = await _client(aiohttp_client, database_url, forge)
    await _allow_auto_merge(client, seeded.project.id)
    svc = client.app[SERVICES]
    async with database.transaction() as conn:
        assert await defer_auto_merge(svc, conn, seeded.run.id) is False
    await auto_merge(svc, seeded.run.id)
    assert _merges(forge) == []
    assert await _events(database, seeded.run.id, "pr.auto_merge_requested", "pr.auto_merge_refused") == []


async def test_a_merge_the_forge_will_not_take_from_this_token_is_a_refusal_never_a_crash(
    database_url, database, aiohttp_client, forge
):
    seeded = await _published(database, forge)
    client = await _client(aiohttp_client, database_url, forge, github_token="ghp_revoked_0000")
    await _allow_auto_merge(client, seeded.project.id)
    await _deliver(client, "status", payload("github", "status.success", sha=SECOND), "d-ci", database)
    [refused] = await wait_for(
        lambda: _events(database, seeded.run.id, "pr.auto_merge_refused"), what="the job to give up"
    )
    assert "HTTP 401 (Bad credentials)" in refused.payload["reason"]
    assert "ghp_revoked_0000" not in refused.message
    assert _merges(forge) == []
    async with database.read() as conn:
        run = await protocols.get(conn, seeded.run.id)
    assert (run.status, run.pr_number) == ("running", 1)
