"""Auto-merge end to end, with a real server, worker, git and scripted agent, and the fake forge: CI
passes on the step's commit → QA → the PR is opened, and, its head's CI having passed already, the
service merges it at that head → the merge webhook completes the run."""

from __future__ import annotations

import os
import subprocess

from app.domain.statuses import ProtocolStatus as P
from app.services import planning, projects
from app.services.policy import set_project_policy
from app.store import events, protocols, steps
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.ci_runs import SECRET, github_request, payload
from tests.support.fake_forge import GITHUB_TOKEN, running_fake_forge
from tests.support.workflow import git, make_repos, project_ready, wait_for, workflow_settings


async def test_a_run_allowed_to_auto_merge_is_merged_when_its_pr_opens_after_ci_passed(
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
            auto_qa_after_exec=False,
            auto_qa_on_ci=True,
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

        project = await projects.register_project(
            svc, name="shop", local_path=str(repos.local), ci_provider="github", forge_repo="acme/shop"
        )
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        await set_project_policy(svc, project.id, pack_key="default", overrides={"auto_merge": True})
        run = await planning.create_protocol(svc, project.id, title="Add login")
        await planning.start_protocol(svc, run.id)

        async def committed() -> str | None:
            async with svc.database.read() as conn:
                plan = await steps.list_for_protocol(conn, run.id)
            return plan[0].commit_sha if plan and plan[0].status == "needs_qa" else None

        sha = await wait_for(committed, seconds=90, what="the step's commit")
        await deliver("status", payload("github", "status.success", sha=sha))
        await wait_for(
            _has(history, "pr.auto_merge_requested"), seconds=90, what="QA, the PR, then the auto-merge"
        )
        assert forge.pulls[("acme/shop", 1)]["merged"] is True
        merges = [c for c in forge.calls("PUT") if c.path.endswith("/merge")]
        assert [(c.path, c.body) for c in merges] == [("/repos/acme/shop/pulls/1/merge", {"sha": sha})]

        merged = payload("github", "pull_request.closed", sha=sha)
        merged["number"] = merged["pull_request"]["number"] = 1
        await deliver("pull_request", merged)

        async def completed() -> bool:
            async with svc.database.read() as conn:
                return (await protocols.get(conn, run.id)).status is P.COMPLETED

        await wait_for(completed, seconds=60, what="the merge webhook to complete the run")
        kinds = [
            k for k in await history() if k.startswith(("ci.", "pr.", "qa.")) or k == "protocol.completed"
        ]

    assert kinds == [
        "ci.passed", "qa.verdict", "pr.opened", "pr.auto_merge_requested", "pr.merged", "protocol.completed"
    ]  # fmt: skip


def _has(history, kind):
    async def check() -> bool:
        return kind in await history()

    return check
