"""A missing or broken agent CLI: refused at setup, failed at once at run time, never left running."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from app.domain.records import AgentRunStatus, ProjectStatus, Stage
from app.domain.selection import EngineChoice
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.engines.command import CommandEngine
from app.services import agents, planning, projects
from app.services.context import build_services
from app.store import agent_runs, events, steps
from app.store import projects as project_store
from tests.support.workflow import (
    SCRIPTED_AGENT,
    agents_working_in,
    make_repos,
    project_ready,
    run_status,
    running_worker,
    wait_for,
    workflow_settings,
)


async def _kinds(svc, **where) -> list[str]:
    async with svc.database.transaction() as conn:
        return [e.event_type for e in await events.list_page(conn, limit=500, **where)]


async def _first_step_on_codex(database_url, tmp_path, codex_bin: str):
    """Set up with the scripted agent, switch execution to codex, run: the first step and its agent
    runs once the run stopped, and the step's event types."""
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, codex_bin=codex_bin, job_max_attempts=3)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        # The operator switches execution to codex after setup (setup checks what the project uses).
        await projects.change_project(svc, project.id, {"execution_engine": "codex"})
        run = await planning.create_protocol(svc, project.id, title="Needs codex")
        await planning.start_protocol(svc, run.id)

        async def stopped():
            return await run_status(svc, run.id) in (P.BLOCKED.value, P.FAILED.value)

        await wait_for(stopped, what="the run to stop")
        async with svc.database.transaction() as conn:
            first = (await steps.list_for_protocol(conn, run.id))[0]
            runs = await agent_runs.list_for_step(conn, first.id)
        return first, runs, await _kinds(svc, step_run_id=first.id)


async def test_a_missing_codex_fails_the_step_at_once_naming_the_setting(database_url, tmp_path):
    missing = tmp_path / "not-installed" / "codex"
    first, runs, kinds = await _first_step_on_codex(database_url, tmp_path, str(missing))
    assert first.status is S.FAILED, first
    assert "TASKSGODZILLA_CODEX_BIN" in (first.last_error or ""), first.last_error
    assert str(missing) in (first.last_error or "")
    assert kinds.count("job.retrying") == 0, "a missing executable is not worth another try"
    assert [(r.stage, r.status) for r in runs] == [(Stage.EXECUTION, AgentRunStatus.FAILED)]
    assert "TASKSGODZILLA_CODEX_BIN" in (runs[0].error or "")
    assert runs[0].finished_at is not None


async def test_a_cli_that_exits_at_once_with_a_usage_error_is_not_retried(database_url, tmp_path):
    """An executable that is not the CLI we speak to (or a version without our flags)."""
    wrong = tmp_path / "old-codex"
    wrong.write_text("#!/bin/sh\necho \"error: unexpected argument '--ephemeral' found\" >&2\nexit 2\n")
    wrong.chmod(0o755)
    first, runs, kinds = await _first_step_on_codex(database_url, tmp_path, str(wrong))
    assert first.status is S.FAILED
    assert "unexpected argument '--ephemeral'" in (first.last_error or "")
    assert "TASKSGODZILLA_CODEX_BIN" in (first.last_error or "")
    assert kinds.count("job.retrying") == 0
    assert [r.status for r in runs] == [AgentRunStatus.FAILED]


async def test_setup_refuses_an_engine_the_project_uses_that_cannot_start(database_url, tmp_path):
    repos = make_repos(tmp_path)
    missing = tmp_path / "nowhere" / "claude"
    settings = workflow_settings(tmp_path, claude_bin=str(missing), qa_engine="claude")
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))

        async def failed():
            async with svc.database.transaction() as conn:
                return (await project_store.get(conn, project.id)).status is ProjectStatus.FAILED

        await wait_for(failed, what="setup to fail")
        async with svc.database.transaction() as conn:
            [failure] = await events.list_page(
                conn, project_id=project.id, event_types=["project.setup_failed"]
            )
        kinds = await _kinds(svc, project_id=project.id)
    assert "TASKSGODZILLA_CLAUDE_BIN" in failure.message
    assert str(missing) in failure.message
    assert kinds.count("job.retrying") == 0


def _agent_services(database, settings, engine):
    return build_services(
        settings, database, _NoQueue(), environ=dict(os.environ), engines={"command": engine}
    )


class _NoQueue:
    async def defer(self, work):  # pragma: no cover - nothing here defers
        return True

    async def abort(self, locks):  # pragma: no cover
        return 0

    async def pending_locks(self, queueing_locks):  # pragma: no cover
        return set()


class _CrashingEngine:
    """The real command engine, whose caller-side code then fails (a parser bug, say)."""

    name = "command"

    def __init__(self, real: CommandEngine) -> None:
        self.real = real

    async def run(self, request):
        await self.real.run(request)
        raise RuntimeError("the transcript parser broke")


async def _project(database, repos) -> int:
    async with database.transaction() as conn:
        return (await project_store.create(conn, name="demo", local_path=str(repos.local))).id


def _command_engine(env: dict[str, str]) -> CommandEngine:
    return CommandEngine(
        argv=[sys.executable, str(SCRIPTED_AGENT)], base_env=env, prices={}, max_output_bytes=1 << 20
    )


async def test_an_engine_that_raises_leaves_no_running_agent_run(database, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path)
    svc = _agent_services(database, settings, _CrashingEngine(_command_engine(dict(os.environ))))
    project_id = await _project(database, repos)
    with pytest.raises(RuntimeError, match="parser broke"):
        await agents.run_agent(
            svc,
            agents.Subject(project_id),
            stage=Stage.DISCOVERY,
            choice=EngineChoice("command", None),
            prompt="describe",
            prompt_version="test",
            workdir=repos.local,
        )
    async with database.transaction() as conn:
        [record] = await agent_runs.list_for_project(conn, project_id)
        kinds = [e.event_type for e in await events.list_page(conn, project_id=project_id)]
    assert record.status is AgentRunStatus.FAILED
    assert "the transcript parser broke" in (record.error or "")
    assert record.finished_at is not None
    assert kinds[-2:] == ["agent.started", "agent.finished"]


async def test_a_cancelled_agent_run_is_closed_as_cancelled(database, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path)
    svc = _agent_services(database, settings, _command_engine({**os.environ, "AGENT_SLEEP": "60"}))
    project_id = await _project(database, repos)
    task = asyncio.create_task(
        agents.run_agent(
            svc,
            agents.Subject(project_id),
            stage=Stage.EXECUTION,
            choice=EngineChoice("command", None),
            prompt="(step 01: x) `.protocols/0001-x/`",
            prompt_version="test",
            workdir=repos.local,
        )
    )

    async def started():
        async with database.transaction() as conn:
            return await agent_runs.list_for_project(conn, project_id)

    await wait_for(started, what="the agent run to be recorded")
    await wait_for(lambda: _async(agents_working_in(repos.local)), what="the agent process to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with database.transaction() as conn:
        [record] = await agent_runs.list_for_project(conn, project_id)
    assert record.status is AgentRunStatus.CANCELLED
    assert "cancelled" in (record.error or "")
    assert record.finished_at is not None
    assert not agents_working_in(repos.local), "the agent process was left running"


async def _async(value):
    return value
