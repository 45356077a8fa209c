"""A run records the policy it was planned under: pack, overrides and the repository's file at its base
commit; a hostile repository file leaves the run on the central policy, with the reason recorded."""

from __future__ import annotations

import json
import os

import pytest

from app.domain.policy import merge
from app.domain.policy_prompt import STRICTNESS_RULES
from app.domain.records import Stage
from app.domain.selection import EngineChoice
from app.domain.statuses import ProtocolStatus as P
from app.services import planning, projects
from app.services.choices import engine_for
from app.services.policy import create_pack, policy_for_project, policy_for_run, set_project_policy
from app.store import agent_runs, events, protocols
from app.store import projects as project_store
from tests.support.workflow import (
    git,
    make_repos,
    project_ready,
    run_status,
    running_worker,
    shared_with_agents,
    wait_for,
    workflow_settings,
)

GOOD = b"plan:\n  max_steps: 6\nchecks:\n  required: ['make test']\n"
HOSTILE = b"a: &a [x, x]\nb: [*a, *a]\n"


def _push_policy(local, data: bytes) -> None:
    folder = local / ".tasksgodzilla"
    folder.mkdir()
    (folder / "policy.yml").write_bytes(data)
    git("add", "-A", cwd=local)
    git("-c", "user.name=Seed", "-c", "user.email=seed@example.test", "commit", "-qm", "policy", cwd=local)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=local)


@pytest.mark.parametrize("hostile", [False, True])
async def test_a_run_records_its_policy_when_planning_starts(database_url, tmp_path, hostile):
    repos = make_repos(tmp_path)
    _push_policy(repos.local, HOSTILE if hostile else GOOD)
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))

        async def ready():
            async with svc.database.transaction() as conn:
                return (await project_store.get(conn, project.id)).status == "ready"

        await wait_for(ready, what="project setup")
        await set_project_policy(
            svc, project.id, pack_key="strict", overrides={"plan": {"max_steps": 10}}, repo_local_enabled=True
        )
        run = await planning.create_protocol(svc, project.id, title="Write two parts")
        await planning.start_protocol(svc, run.id)

        async def planned():
            async with svc.database.transaction() as conn:
                status = (await protocols.get(conn, run.id)).status
            return status not in (P.PENDING, P.PLANNING)

        await wait_for(planned, what="planning to finish")
        recorded = await policy_for_run(svc, run.id)
        central = await policy_for_project(svc, project.id)
        await set_project_policy(svc, project.id, pack_key="default")  # later changes leave the run alone
        after = await policy_for_run(svc, run.id)
        async with svc.database.transaction() as conn:
            run = await protocols.get(conn, run.id)
            [applied] = await events.list_page(conn, protocol_run_id=run.id, event_types=["policy.applied"])

    assert (run.policy_pack_key, run.policy_pack_version) == ("strict", "1.0")
    assert run.policy_effective_hash == recorded.hash == after.hash
    assert after.policy == recorded.policy
    if hostile:
        assert recorded.policy == central.policy  # the central policy applies
        assert recorded.policy["plan"]["max_steps"] == 10
        assert [p["code"] for p in applied.payload["problems"]] == ["policy.repo_local_invalid"]
        assert "anchors" in applied.payload["problems"][0]["message"]
    else:
        assert recorded.policy["plan"]["max_steps"] == 6  # the repository's file is the last layer
        assert recorded.policy["checks"]["required"] == ["make test"]  # locked list: may grow
        assert applied.payload["problems"] == []
        assert applied.payload["repo_local"] is True


async def test_a_run_executes_on_the_engine_its_pack_names_when_nothing_nearer_does(database_url, tmp_path):
    """The settings say codex executes; the pack says `command`; the project, run and steps say nothing.
    Setup checks only the engines the stages use (codex is never needed), and every step runs on the
    pack's engine and model."""
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, execution_engine="codex", execution_model="gpt-from-settings")
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        pack = {"engines": {"execution": {"engine": "command", "model": "model-from-pack"}}}
        await create_pack(svc, key="default", version="2.0", pack=pack)
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Write two parts")
        await planning.start_protocol(svc, run.id)
        await wait_for(lambda: _completed(svc, run.id), seconds=120, what="the run to complete")
        async with svc.database.transaction() as conn:
            used = await agent_runs.list_for_project(conn, project.id)
            [asked] = await events.list_page(
                conn, project_id=project.id, event_types=["setup.clarifications"]
            )

    recommended = {q["key"]: q["recommended"] for q in asked.payload["questions"]}
    assert (recommended["execution_engine"], recommended["execution_model"]) == ("command", "model-from-pack")
    executed = [(r.engine, r.model) for r in used if r.stage == "execution"]
    assert executed == [("command", "model-from-pack")] * 2
    assert {r.engine for r in used} == {"command"}


async def _completed(svc, run_id: int) -> bool:
    return await run_status(svc, run_id) == P.COMPLETED


async def test_the_step_and_qa_agents_are_told_the_runs_policy(database_url, tmp_path, monkeypatch):
    """The executing agent is told the required checks and the commit convention; the QA agent the
    strictness it judges by and the checks it must run (the prompts as the agent received them)."""
    prompts = shared_with_agents(tmp_path / "prompts.jsonl")
    monkeypatch.setenv("AGENT_PROMPT_LOG", str(prompts))
    repos = make_repos(tmp_path)
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        pack = {
            "qa": {"strictness": "strict"},
            "checks": {"required": ["make check"]},
            "git": {"commit_convention": "Conventional Commits"},
        }
        await create_pack(svc, key="default", version="2.0", pack=pack)
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Write two parts")
        await planning.start_protocol(svc, run.id)
        await wait_for(lambda: _completed(svc, run.id), seconds=120, what="the run to complete")

    told = [json.loads(line) for line in prompts.read_text().splitlines()]
    execution = [t["prompt"] for t in told if t["stage"] == "execution"]
    qa = [t["prompt"] for t in told if t["stage"] == "qa"]
    assert len(execution) == len(qa) == 2
    for prompt in execution:
        assert "- Run each of these checks and make it pass before you finish: `make check`." in prompt
        assert "The project's commit convention is `Conventional Commits`." in prompt
    for prompt in qa:
        assert f"- Strictness strict: {STRICTNESS_RULES['strict']}" in prompt
        assert "- Run each of these required checks yourself: `make check`." in prompt


async def test_a_recorded_policy_naming_an_unknown_engine_falls_back_and_says_so(database_url, tmp_path):
    """A run recorded before engine names were checked: its unknown engine (and that engine's model)
    is skipped, the settings decide, and one `policy.unknown_engine` finding says why."""
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Old run")
        recorded, _ = merge({})
        recorded["engines"]["execution"] = {"engine": "gemini", "model": "pro"}
        async with svc.database.transaction() as conn:
            run = await protocols.update_fields(
                conn,
                run.id,
                expected_version=run.version,
                policy_pack_key="default",
                policy_pack_version="1.0",
                policy_effective_hash="0" * 64,
                policy_effective=recorded,
            )
        first = await engine_for(svc, Stage.EXECUTION, project, run)
        again = await engine_for(svc, Stage.EXECUTION, project, run)
        async with svc.database.read() as conn:
            said = await events.list_page(conn, protocol_run_id=run.id, event_types=["policy.finding"])

    assert first == again == EngineChoice("command", settings.execution_model)  # the settings', not "pro"
    assert [e.payload["finding"]["code"] for e in said] == ["policy.unknown_engine"]
    assert "engines.execution.engine: 'gemini' is not an engine" in said[0].message
