"""Fallbacks with a real worker: the real Codex CLI is rate limited by the scripted model endpoint, the
stage's fallback (the scripted command agent) answers, the step completes, and both tries are recorded."""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.domain.records import AgentRunStatus, Stage
from app.domain.redaction import REDACTED
from app.domain.selection import EngineChoice
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services import agents, planning, projects
from app.services.context import build_services
from app.store import agent_runs, events, steps
from app.store import projects as project_store
from app.tracing import Tracing
from tests.support.fake_openai import API_KEY_ENV, HttpError, codex_env, provider_overrides
from tests.support.workflow import (
    AGENT_VARIABLES,
    NoQueue,
    make_repos,
    project_ready,
    run_status,
    running_worker,
    shared_with_agents,
    wait_for,
    workflow_settings,
)


async def test_a_rate_limited_engine_falls_back_to_the_next_and_the_step_completes(
    database_url, tmp_path, fake_openai, codex_bin, codex_home
):
    repos = make_repos(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    settings = workflow_settings(
        tmp_path,
        execution_engine="codex",
        execution_model="mock-model",
        engine_fallbacks={"execution": ["command"]},
        codex_bin=codex_bin,
        codex_config=provider_overrides(fake_openai.base_url),
        agent_env_passthrough=["PATH", "HOME", "CODEX_HOME", API_KEY_ENV, *AGENT_VARIABLES],
    )
    environ = {**os.environ, "AGENT_PLAN_STEPS": "1", **codex_env(codex_home, os.environ["PATH"], home)}
    fake_openai.play(HttpError(429, "Rate limit reached for requests", "rate_limit_exceeded"))
    async with running_worker(settings, database_url, environ=environ) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        run = await planning.create_protocol(svc, project.id, title="Write one part")
        await planning.start_protocol(svc, run.id)

        async def completed() -> bool:
            return await run_status(svc, run.id) == P.COMPLETED.value

        await wait_for(completed, seconds=120, what="the run to complete")
        async with svc.database.transaction() as conn:
            [step] = await steps.list_for_protocol(conn, run.id)
            tries = await agent_runs.list_for_step(conn, step.id)
            history = await events.list_page(conn, step_run_id=step.id, limit=500)

    assert step.status is S.COMPLETED
    assert len(fake_openai.requests) == 1, "codex asked the model once and was refused"
    assert [(r.stage, r.engine, r.model, r.status) for r in tries] == [
        (Stage.EXECUTION, "codex", "mock-model", AgentRunStatus.FAILED),
        (Stage.EXECUTION, "command", None, AgentRunStatus.SUCCEEDED),
        (Stage.QA, "command", settings.qa_model, AgentRunStatus.SUCCEEDED),
    ]
    assert "429" in (tries[0].error or "")
    [fallback] = [e for e in history if e.event_type == "agent.fallback"]
    assert fallback.payload["agent_run_id"] == tries[0].id
    assert fallback.payload["reason"] == "rate limited"
    assert (fallback.payload["from_engine"], fallback.payload["from_model"]) == ("codex", "mock-model")
    assert (fallback.payload["to_engine"], fallback.payload["to_model"]) == ("command", None)
    assert "429 Too Many Requests" in fallback.payload["error"]
    finished = [e.payload for e in history if e.event_type == "agent.finished"]
    assert [(p["engine"], p["status"]) for p in finished[:2]] == [
        ("codex", "failed"),
        ("command", "succeeded"),
    ]
    kinds = [e.event_type for e in history if e.event_type.startswith("agent.")]
    assert kinds[:5] == [
        "agent.started",
        "agent.finished",
        "agent.fallback",
        "agent.started",
        "agent.finished",
    ]


def _services(database, tmp_path, exporter: InMemorySpanExporter, **settings):
    return build_services(
        workflow_settings(tmp_path, **settings),
        database,
        NoQueue(),
        environ=dict(os.environ),
        tracing=Tracing(exporter, batch=False),
    )


async def _discover(svc, repos, choice: EngineChoice):
    async with svc.database.transaction() as conn:
        project_id = (await project_store.create(conn, name="demo", local_path=str(repos.local))).id
    _, result = await agents.run_agent(
        svc,
        agents.Subject(project_id),
        stage=Stage.DISCOVERY,
        choice=choice,
        prompt="describe",
        prompt_version="test",
        workdir=repos.local,
    )
    async with svc.database.transaction() as conn:
        runs = await agent_runs.list_for_project(conn, project_id)
        history = await events.list_page(conn, project_id=project_id, limit=100)
    return result, runs, history


async def test_an_engine_that_cannot_start_falls_back_and_its_span_says_it_failed(database, tmp_path):
    repos = make_repos(tmp_path)
    exporter = InMemorySpanExporter()
    missing = tmp_path / "not-installed" / "codex"
    svc = _services(database, tmp_path, exporter, codex_bin=str(missing))
    choice = EngineChoice("codex", "gpt-x", fallbacks=(EngineChoice("command", None),))
    result, runs, history = await _discover(svc, repos, choice)
    assert result.succeeded
    assert [(r.engine, r.status) for r in runs] == [
        ("codex", AgentRunStatus.FAILED),
        ("command", AgentRunStatus.SUCCEEDED),
    ]
    assert "TASKSGODZILLA_CODEX_BIN" in (runs[0].error or "")
    [fallback] = [e.payload for e in history if e.event_type == "agent.fallback"]
    assert (fallback["reason"], fallback["agent_run_id"]) == ("could not start", runs[0].id)
    assert str(missing) in fallback["error"]
    first, second = [s for s in exporter.get_finished_spans() if s.name == "agent discovery"]
    assert first.attributes["tasksgodzilla.engine"] == "codex"
    assert first.status.status_code is StatusCode.ERROR
    assert second.status.status_code is not StatusCode.ERROR


async def test_a_failed_agent_runs_span_carries_the_redacted_error(database, tmp_path):
    repos = make_repos(tmp_path)
    exporter = InMemorySpanExporter()
    token = "tg-api-token-" + "x" * 24
    script = shared_with_agents(tmp_path / "failing_agent.py")
    script.write_text(f"import sys\nprint('model refused, token {token}', file=sys.stderr)\nsys.exit(3)\n")
    svc = _services(
        database, tmp_path, exporter, api_token=token, command_agent=[sys.executable, str(script)]
    )
    result, runs, history = await _discover(svc, repos, EngineChoice("command", None))
    assert result.status is AgentRunStatus.FAILED
    assert [r.status for r in runs] == [AgentRunStatus.FAILED], "no fallback without a list"
    assert not [e for e in history if e.event_type == "agent.fallback"]
    [span] = [s for s in exporter.get_finished_spans() if s.name == "agent discovery"]
    assert span.status.status_code is StatusCode.ERROR
    assert "exited with code 3" in (span.status.description or "")
    assert REDACTED in (span.status.description or "")
    assert token not in (span.status.description or "")
