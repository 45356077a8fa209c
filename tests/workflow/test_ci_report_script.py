"""scripts/ci/report.sh against a live server: the CI variables of GitHub Actions and GitLab CI in,
a step whose state changes out."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from app.config import Settings
from app.web.app import create_app
from tests.support.ci_runs import BRANCH, SECOND, seed_run, statuses
from tests.support.workflow import wait_for

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ci" / "report.sh"
TOKEN = "ci-shared-token-42"


@pytest.fixture
async def live(database_url, database, aiohttp_server):
    settings = Settings(webhook_token=TOKEN, auto_qa_after_exec=False, scheduler_interval_seconds=600)
    server = await aiohttp_server(create_app(settings, database_url))
    return str(server.make_url("")).rstrip("/")


async def report(*args: str, **env: str) -> tuple[int, str]:
    """Run the script as a CI job would (`sh report.sh ...`), without blocking the server's loop."""
    process = await asyncio.create_subprocess_exec(
        "sh",
        str(SCRIPT),
        *args,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_github_actions_failure_blocks_the_step(database_url, database, live):
    seeded = await seed_run(database)
    code, output = await report(
        "failure",
        "3 tests failed",
        TASKSGODZILLA_API_BASE=live,
        TASKSGODZILLA_WEBHOOK_TOKEN=TOKEN,
        GITHUB_ACTIONS="true",
        GITHUB_SHA=SECOND,
        GITHUB_REF_NAME=BRANCH,
        GITHUB_REPOSITORY="acme/shop",
        GITHUB_RUN_ID="9001",
    )
    assert code == 0, output
    assert f"failure reported for {SECOND}" in output

    async def blocked():
        return await statuses(database, seeded) == ("blocked", [("completed", None), ("blocked", "failed")])

    await wait_for(blocked, seconds=30, what="the step to be blocked")


async def test_gitlab_ci_success_is_recorded_on_the_step(database_url, database, live):
    seeded = await seed_run(database, ci_provider="gitlab")
    code, output = await report(
        "success",
        TASKSGODZILLA_API_BASE=live + "/",
        TASKSGODZILLA_WEBHOOK_TOKEN=TOKEN,
        GITLAB_CI="true",
        CI_COMMIT_SHA=SECOND,
        CI_COMMIT_REF_NAME=BRANCH,
        CI_PROJECT_PATH="acme/shop",
        CI_PIPELINE_ID="77",
        CI_PIPELINE_URL="https://gitlab.example.test/acme/shop/-/pipelines/77",
    )
    assert code == 0, output

    async def passed():
        return await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", "passed")])

    await wait_for(passed, seconds=30, what="CI success on the step")


async def test_a_wrong_token_is_refused_and_changes_nothing(database_url, database, live):
    seeded = await seed_run(database)
    code, output = await report(
        "failure",
        TASKSGODZILLA_API_BASE=live,
        TASKSGODZILLA_WEBHOOK_TOKEN="not-the-token",
        GITHUB_SHA=SECOND,
        GITHUB_REF_NAME=BRANCH,
        GITHUB_REPOSITORY="acme/shop",
    )
    assert code == 1
    assert "401" in output
    assert "not-the-token" not in output
    assert await statuses(database, seeded) == ("running", [("completed", None), ("needs_qa", None)])


@pytest.mark.parametrize(
    ("args", "env", "complaint"),
    [
        (["maybe"], {}, "usage"),
        (["success"], {"TASKSGODZILLA_WEBHOOK_TOKEN": TOKEN}, "TASKSGODZILLA_API_BASE"),
        (["success"], {"TASKSGODZILLA_API_BASE": "http://127.0.0.1:9"}, "TASKSGODZILLA_WEBHOOK_TOKEN"),
        (["success"], {"GITHUB_SHA": "abc123"}, "full SHA"),
        (["success"], {"GITHUB_REF_NAME": "-x"}, "branch"),
        (["success"], {"GITHUB_REPOSITORY": 'a/b","x":"'}, "repository"),
    ],
)
async def test_wrong_usage_exits_2_before_sending_anything(args, env, complaint):
    base = {
        "TASKSGODZILLA_API_BASE": "http://127.0.0.1:9",
        "TASKSGODZILLA_WEBHOOK_TOKEN": TOKEN,
        "GITHUB_SHA": SECOND,
        "GITHUB_REF_NAME": BRANCH,
        "GITHUB_REPOSITORY": "acme/shop",
    }
    if complaint in ("TASKSGODZILLA_API_BASE", "TASKSGODZILLA_WEBHOOK_TOKEN"):
        base.pop(complaint)
    code, output = await report(*args, **{**base, **env})
    assert code == 2
    assert complaint in output
