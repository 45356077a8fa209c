"""The whole life cycle driven by the real Codex CLI against the scripted model endpoint.

Register a local repository, create a protocol, plan it into two steps, execute each through the
agent's own shell tool, QA passes the first and fails the second, a person approves it, and the run
completes with its branch pushed to the bare origin. Every transition is in the events table, in order.
"""

from __future__ import annotations

import json
import os

from app.domain.statuses import StepStatus as S
from app.services import planning, projects, quality
from app.store import agent_runs, events, protocols, steps
from tests.support.fake_openai import API_KEY_ENV, Message, ToolCall, codex_env, provider_overrides
from tests.support.workflow import git, make_repos, project_ready, run_status, running_worker, wait_for
from tests.support.workflow import workflow_settings as base_settings

PLAN = {
    "plan_md": "# Plan: greet twice\n\n1. Write hello.\n2. Write bye.\n",
    "context_md": "# Context\n\nA tiny repository.\n",
    "log_md": "# Log\n\n- planned\n",
    "step_files": [
        {"filename": "01-hello.md", "content": "# Write hello\n\n## Goal\nhello.txt says hello.\n"},
        {"filename": "02-bye.md", "content": "# Write bye\n\n## Goal\nbye.txt says bye.\n"},
    ],
}


def _verdict(verdict: str, summary: str) -> Message:
    return Message(json.dumps({"verdict": verdict, "summary": summary, "findings": []}))


async def test_codex_plans_executes_and_is_checked_end_to_end(
    database_url, tmp_path, fake_openai, codex_bin, codex_home
):
    repos = make_repos(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    settings = base_settings(
        tmp_path,
        planning_engine="codex",
        execution_engine="codex",
        qa_engine="codex",
        planning_model="mock-model",
        execution_model="mock-model",
        qa_model="mock-model",
        codex_bin=codex_bin,
        codex_config=provider_overrides(fake_openai.base_url),
        agent_env_passthrough=["PATH", "HOME", "CODEX_HOME", API_KEY_ENV],
    )
    environ = codex_env(codex_home, os.environ["PATH"], home)
    fake_openai.play(
        Message(json.dumps(PLAN)),
        ToolCall("printf hello > hello.txt"),
        Message("wrote hello.txt"),
        _verdict("pass", "hello.txt is right"),
        ToolCall("printf bye > bye.txt"),
        Message("wrote bye.txt"),
        _verdict("fail", "bye.txt should end with a newline"),
    )
    async with running_worker(settings, database_url, environ=environ) as svc:
        project = await projects.register_project(svc, name="greeter", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        run = await planning.create_protocol(svc, project.id, title="Greet twice")
        await planning.start_protocol(svc, run.id)
        await wait_for(lambda: _is(svc, run.id, "blocked"), seconds=120, what="QA to fail step 2")
        async with svc.database.transaction() as conn:
            first, second = await steps.list_for_protocol(conn, run.id)
        assert (first.status, second.status) == (S.COMPLETED, S.FAILED)
        await quality.approve_step(svc, second.id, by="reviewer", note="newline is fine")
        await wait_for(lambda: _is(svc, run.id, "completed"), seconds=60, what="completion")
        async with svc.database.transaction() as conn:
            run = await protocols.get(conn, run.id)
            history = await events.list_page(conn, protocol_run_id=run.id, limit=500)
            usage = await agent_runs.list_for_step(conn, first.id)

    branch = run.branch_name
    assert git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{branch}") == run.head_sha
    assert git("--git-dir", str(repos.origin), "show", f"{branch}:hello.txt") == "hello"
    assert git("--git-dir", str(repos.origin), "show", f"{branch}:bye.txt") == "bye"
    plan_file = git(
        "--git-dir", str(repos.origin), "show", f"{branch}:.protocols/0001-greet-twice/01-hello.md"
    )
    assert plan_file.startswith("# Write hello")

    transitions = [e.event_type for e in history if e.event_type.split(".")[0] in ("protocol", "step")]
    transitions = [t for t in transitions if t not in ("step.committed", "step.approved")]
    assert transitions == [
        "protocol.created", "protocol.planning", "protocol.planned", "protocol.running",
        "step.running", "step.needs_qa", "step.completed",
        "step.running", "step.needs_qa", "step.failed", "protocol.blocked",
        "step.completed", "protocol.running", "protocol.completed",
    ]  # fmt: skip
    verdicts = [e.payload["verdict"] for e in history if e.event_type == "qa.verdict"]
    assert verdicts == ["pass", "fail"]
    # Every key agent decision is an event: the plan accepted (with its commit), each verdict above.
    [accepted] = [e for e in history if e.event_type == "plan.accepted"]
    assert accepted.payload["steps"] == 2
    assert len(accepted.payload["commit"]) == 40
    assert [(u.stage.value, u.engine, u.status.value) for u in usage] == [
        ("execution", "codex", "succeeded"),
        ("qa", "codex", "succeeded"),
    ]
    assert usage[0].input_tokens == 200, "two model requests of 100 input tokens each (scripted usage)"
    assert any("Task: Greet twice" in prompt for prompt in fake_openai.prompts())


async def _is(svc, run_id: int, status: str) -> bool:
    return await run_status(svc, run_id) == status
