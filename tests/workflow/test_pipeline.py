"""The whole life cycle with a real worker, real git and the scripted command agent."""

from __future__ import annotations

import os

from app import prompts
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services import planning, projects, quality
from app.store import events, protocols, steps
from app.store import projects as project_store
from tests.support.workflow import git, make_repos, running_worker, wait_for, workflow_settings


async def _status(svc, run_id):
    async with svc.database.transaction() as conn:
        return (await protocols.get(conn, run_id)).status


async def test_a_protocol_runs_from_plan_to_pushed_branch(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_QA_FAIL", "2")
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))

        async def ready():
            async with svc.database.transaction() as conn:
                return (await project_store.get(conn, project.id)).status == "ready"

        await wait_for(ready, what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Write two parts")
        await planning.start_protocol(svc, run.id)

        async def blocked():
            return await _status(svc, run.id) is P.BLOCKED

        await wait_for(blocked, what="QA to fail step 2")
        async with svc.database.transaction() as conn:
            first, second = await steps.list_for_protocol(conn, run.id)
        assert (first.status, second.status) == (S.COMPLETED, S.FAILED)
        # Each step records the prompt versions its agents were given (run: the planning one).
        versions = {(s.prompt_version, s.qa_prompt_version) for s in (first, second)}
        assert versions == {(prompts.load("execution").version, prompts.load("qa").version)}
        await quality.approve_step(svc, second.id, by="operator")

        async def completed():
            return await _status(svc, run.id) is P.COMPLETED

        await wait_for(completed, what="the run to complete")
        async with svc.database.transaction() as conn:
            run = await protocols.get(conn, run.id)
            history = [e.event_type for e in await events.list_page(conn, protocol_run_id=run.id, limit=500)]

    assert run.branch_name == "tasksgodzilla/demo/0001-write-two-parts"
    assert run.planning_prompt_version == prompts.load("planning").version
    pushed = git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{run.branch_name}")
    assert pushed == run.head_sha
    subjects = git("--git-dir", str(repos.origin), "log", "--format=%s", run.branch_name).splitlines()
    assert subjects[:3] == [
        "feat: Part 2 [protocol-0001/02]",
        "feat: Part 1 [protocol-0001/01]",
        "docs(plan): Write two parts [protocol-0001/00]",
    ]
    transitions = [t for t in history if t.startswith(("protocol.", "step.")) and t != "step.committed"]
    assert transitions == [
        "protocol.created",
        "protocol.planning",
        "protocol.planned",
        "protocol.running",
        "step.running",
        "step.needs_qa",
        "step.completed",
        "step.running",
        "step.needs_qa",
        "step.failed",
        "protocol.blocked",
        "step.completed",
        "step.approved",
        "protocol.running",
        "protocol.completed",
    ]
