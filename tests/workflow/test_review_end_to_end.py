"""Review comments and CI logs end to end, with a real server, worker, git and scripted agent, and the
fake forge: CI passes → QA → the PR opens → a collaborator's review comment → the step runs again with
it, commits, pushes, and its answer is posted as a reply in the comment's thread → CI fails on that
commit → the fix run's prompt carries the failed job's name and its log's end, a secret redacted."""

from __future__ import annotations

import json
import os
import subprocess

from app.services import planning, projects
from app.store import events, steps
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.ci_runs import SECRET, github_request, payload
from tests.support.fake_forge import GITHUB_TOKEN, running_fake_forge
from tests.support.fake_forge_extras import CiJob
from tests.support.workflow import (
    git,
    make_repos,
    project_ready,
    shared_with_agents,
    wait_for,
    workflow_settings,
)


async def test_a_review_comment_is_answered_and_a_ci_failure_s_log_reaches_the_fix(
    database_url, aiohttp_client, tmp_path, monkeypatch
):
    repos = make_repos(tmp_path)
    prompts = shared_with_agents(tmp_path / "prompts.jsonl")
    monkeypatch.setenv("AGENT_PLAN_STEPS", "1")
    monkeypatch.setenv("AGENT_PROMPT_LOG", str(prompts))

    def pushed_head(branch: str) -> str | None:
        try:
            return git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None

    async with running_fake_forge(head_sha=pushed_head) as forge:
        settings = workflow_settings(
            tmp_path,
            branch_pattern="{name}",  # the recorded payloads name branch 0001-add-login
            auto_qa_after_exec=False,
            auto_qa_on_ci=True,
            fix_ci_attempts=1,
            github_webhook_secret=SECRET,
            github_api_url=forge.url,
            github_token=GITHUB_TOKEN,
        )
        client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
        svc = client.app[SERVICES]

        async def deliver(event: str, body: dict) -> None:
            response = await client.post("/webhooks/github", **github_request(event, body))
            assert response.status == 202, await response.text()

        async def history() -> list[str]:
            async with svc.database.read() as conn:
                found = await events.list_page(conn, protocol_run_id=run.id, limit=500)
            return [e.event_type for e in found]

        def has(kind: str, count: int = 1):
            async def check() -> bool:
                return (await history()).count(kind) >= count

            return check

        async def committed(after: str | None = None) -> str | None:
            async with svc.database.read() as conn:
                plan = await steps.list_for_protocol(conn, run.id)
            step = plan[0] if plan else None
            ready = step is not None and step.status == "needs_qa" and step.commit_sha != after
            return step.commit_sha if ready else None

        project = await projects.register_project(
            svc, name="shop", local_path=str(repos.local), ci_provider="github", forge_repo="acme/shop"
        )
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Add login")
        await planning.start_protocol(svc, run.id)

        first = await wait_for(committed, seconds=90, what="the step's commit")
        await deliver("status", payload("github", "status.success", sha=first))
        await wait_for(has("pr.opened"), seconds=90, what="QA, then the PR")

        comment = payload("github", "pull_request_review_comment.created", sha=first)
        await deliver("pull_request_review_comment", comment)
        await wait_for(has("review.replied"), seconds=90, what="the fix round and its reply")
        [reply] = forge.extras.replies
        assert (reply["number"], reply["in_reply_to_id"]) == (1, 2001)
        assert reply["body"].startswith("**Done** (TasksGodzilla's agent): changed as asked in comment-2001")
        second = await committed(after=first)
        assert second is not None
        assert second != first
        assert pushed_head("0001-add-login") == second
        fixed = git("--git-dir", str(repos.origin), "show", f"{second}:work/01.txt")
        assert fixed.startswith("step 01 fixed")

        forge.extras.add_ci_jobs(second, CiJob("test (3.11)", f"token {GITHUB_TOKEN}\nFAILED test_login\n"))
        failing = payload("github", "check_suite.completed", sha=second)
        failing["check_suite"]["conclusion"] = "failure"
        await deliver("check_suite", failing)
        await wait_for(has("step.committed", 3), seconds=90, what="the fix-CI run")

        seen = [json.loads(line) for line in prompts.read_text().splitlines()]
        executions = [s["prompt"] for s in seen if s["stage"] == "execution"]
        kinds = [k for k in await history() if k.startswith(("review.", "ci.", "pr."))]

    assert len(executions) == 3
    review_prompt, fix_prompt = executions[1], executions[2]
    assert (
        '<reviewer-comment id="comment-2001">\nThis line should say which part it is.\n</reviewer-comment>'
        in review_prompt
    )
    assert "## The failed CI job: test (3.11)" in fix_prompt
    assert "FAILED test_login" in fix_prompt
    assert GITHUB_TOKEN not in fix_prompt
    assert "token ********" in fix_prompt
    assert kinds == [
        "ci.passed", "pr.opened", "review.received", "review.fix_requested", "review.answered",
        "review.replied", "ci.failed", "ci.fix_requested",
    ]  # fmt: skip
