"""The whole CI loop with a real server, worker, git and scripted agent, and the fake forge:
protocol run → CI success → QA → PR opened → CI failure blocks → retry (the agent fixes it) →
CI success → QA → PR updated → merge webhook completes the run."""

from __future__ import annotations

import os
import subprocess

from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services import controls, planning, projects
from app.store import events, protocols, steps
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.ci_runs import SECRET, github_request, payload
from tests.support.fake_forge import GITHUB_TOKEN, running_fake_forge
from tests.support.workflow import git, make_repos, project_ready, wait_for, workflow_settings


async def test_a_protocol_goes_through_ci_and_review_to_a_merge(
    database_url, aiohttp_client, tmp_path, monkeypatch
):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_PLAN_STEPS", "1")

    def pushed_head(branch: str) -> str | None:
        try:
            return git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None

    async with running_fake_forge(head_sha=pushed_head) as forge:
        settings = workflow_settings(
            tmp_path,
            branch_pattern="{name}",  # the recorded payloads name branch 0001-add-login
            auto_qa_after_exec=False,  # QA waits for CI ...
            auto_qa_on_ci=True,  # ... and CI success queues it
            github_webhook_secret=SECRET,
            github_api_url=forge.url,
            github_token=GITHUB_TOKEN,
        )
        client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
        svc = client.app[SERVICES]

        async def read() -> tuple[ProtocolRun, StepRun]:
            async with svc.database.snapshot() as conn:  # the run and its step as of one moment
                current = await protocols.get(conn, run.id)
                plan = await steps.list_for_protocol(conn, run.id)
            return current, plan[0] if plan else None  # type: ignore[return-value]

        async def when(check, what: str) -> tuple[ProtocolRun, StepRun]:
            async def probe():
                current, step = await read()
                return (current, step) if step is not None and check(current, step) else None

            return await wait_for(probe, seconds=90, what=what)

        async def deliver(event: str, body: dict) -> None:
            response = await client.post("/webhooks/github", **github_request(event, body))
            assert response.status == 202, await response.text()

        project = await projects.register_project(
            svc, name="shop", local_path=str(repos.local), ci_provider="github", forge_repo="acme/shop"
        )
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Add login")
        await planning.start_protocol(svc, run.id)

        # Executed, pushed, and waiting: neither QA nor a PR before CI has spoken.
        run, step = await when(lambda r, s: s.status is S.NEEDS_QA, "the step to wait for CI")
        first = step.commit_sha
        assert first == pushed_head("0001-add-login")
        assert forge.received == []

        await deliver("status", payload("github", "status.success", sha=first))
        run, step = await when(lambda r, s: r.pr_number is not None, "QA, then the PR")
        assert (run.status, step.status, step.ci_status, step.qa_verdict) == (
            P.RUNNING,
            S.COMPLETED,
            "passed",
            "pass",
        )
        assert (run.published_sha, run.pr_url) == (first, "https://github.com/acme/shop/pull/1")
        opened = forge.pulls[("acme/shop", 1)]
        assert (opened["head"]["ref"], opened["head"]["sha"], opened["base"]["ref"]) == (
            "0001-add-login",
            first,
            "main",
        )

        # Another check suite fails on the same commit: the step and the run are blocked.
        failing = payload("github", "check_suite.completed", sha=first)
        failing["check_suite"]["conclusion"] = "failure"
        await deliver("check_suite", failing)
        run, step = await when(lambda r, s: r.status is P.BLOCKED, "CI failure to block the run")
        assert (step.status, step.ci_status) == (S.BLOCKED, "failed")

        # Retried: the agent works again (with the failure as context) and makes a new commit.
        await controls.retry_step(svc, step.id)
        # The step records its commit before the push records the run's head: wait for both.
        run, step = await when(
            lambda r, s: (
                s.status is S.NEEDS_QA and s.commit_sha not in (None, first) and r.head_sha == s.commit_sha
            ),
            "a new commit for the step, pushed",
        )
        second = step.commit_sha
        assert (step.ci_status, run.head_sha, pushed_head("0001-add-login")) == (None, second, second)

        await deliver("status", payload("github", "status.success", sha=second))
        run, step = await when(lambda r, s: r.published_sha == second, "QA again, then the PR updated")
        assert (run.status, step.status, run.pr_number) == (P.RUNNING, S.COMPLETED, 1)

        forge.merge("acme/shop", 1)
        merged = payload("github", "pull_request.closed", sha=second)
        merged["number"] = merged["pull_request"]["number"] = 1
        await deliver("pull_request", merged)
        run, step = await when(lambda r, s: r.status is P.COMPLETED, "the merge to complete the run")

        async with svc.database.read() as conn:
            history = [e.event_type for e in await events.list_page(conn, protocol_run_id=run.id, limit=500)]

    # One PR, opened once and updated once; the run summary posted each time.
    assert [(c.method, c.path) for c in forge.received if c.method != "GET"] == [
        ("POST", "/repos/acme/shop/pulls"),
        ("POST", "/repos/acme/shop/issues/1/comments"),
        ("PATCH", "/repos/acme/shop/pulls/1"),
        ("POST", "/repos/acme/shop/issues/1/comments"),
    ]
    assert all(c.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}" for c in forge.received)
    assert "are completed at" in forge.comments[("acme/shop", 1)][-1]
    ci_and_pr = [
        t
        for t in history
        if t.startswith(("ci.", "pr.", "qa.")) or t in ("protocol.blocked", "protocol.completed")
    ]
    assert ci_and_pr == [
        "ci.passed", "qa.verdict", "pr.opened",
        "ci.failed", "protocol.blocked",
        "ci.passed", "qa.verdict", "pr.updated",
        "pr.merged", "protocol.completed",
    ]  # fmt: skip
    subjects = git("--git-dir", str(repos.origin), "log", "--format=%s", "0001-add-login").splitlines()
    assert subjects[:2] == ["feat: Part 1 [protocol-0001/01]", "feat: Part 1 [protocol-0001/01]"]
