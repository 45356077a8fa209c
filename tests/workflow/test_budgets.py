"""Budgets are checked before every agent run of every stage, on a real worker with the scripted agent
(120 tokens a run): each stage meets a different budget, in each mode."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from app.domain.records import AgentRunStatus, ProjectStatus, Stage
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services import controls, planning, projects
from app.services.budgets import raise_budget
from app.store import agent_runs, events, protocols, steps
from app.store import projects as project_store
from tests.support.workflow import make_repos, running_worker, wait_for, workflow_settings


@dataclass(frozen=True)
class Case:
    scope: str
    settings: dict[str, Any]
    reason: str  # the start of the refusal's reason


CASES = {
    # The month's 50 tokens cannot cover discovery's 1000 expected (the floor: no run yet).
    Stage.DISCOVERY: Case(
        "month", {"setup_discovery": True, "max_tokens_per_project_month": 50}, "the month"
    ),
    # Planning's 1000 expected tokens of a model without a price, at the fallback $1 per 1k, are more
    # than the project's $0.50.
    Stage.PLANNING: Case(
        "project",
        {"max_cost_per_project_usd": 0.5, "unpriced_usd_per_1k_tokens": 1.0, "planning_model": "unpriced-1"},
        "the project",
    ),
    # The case: with a step limit of 50 tokens, steps spent 240 each and the run completed.
    Stage.EXECUTION: Case("step", {"max_tokens_per_step": 50}, "the step"),
    # Planning (0 + 100) and execution (120 + 100) fit in 300; QA (240 + 100) does not.
    Stage.QA: Case(
        "protocol", {"max_tokens_per_protocol": 300, "budget_estimate_floor_tokens": 100}, "the protocol"
    ),
}


async def _project_status(svc, project_id):
    async with svc.database.read() as conn:
        project = await project_store.get(conn, project_id)
    return project if project.status in (ProjectStatus.READY, ProjectStatus.FAILED) else None


async def _settled(svc, run_id):
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run_id)
    return run if run.status in (P.BLOCKED, P.COMPLETED, P.FAILED) else None


async def _history(svc, project_id):
    async with svc.database.read() as conn:
        found = await events.list_page(conn, project_id=project_id, limit=500)
        runs = await agent_runs.list_for_project(conn, project_id)
    return found, runs


@pytest.mark.parametrize("mode", ["enforce", "warn", "off"])
@pytest.mark.parametrize("stage", list(CASES))
async def test_every_stage_is_checked_before_its_agent_runs(database_url, tmp_path, monkeypatch, stage, mode):
    case = CASES[stage]
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_PLAN_STEPS", "1")
    settings = workflow_settings(tmp_path, budget_mode=mode, **case.settings)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        project = await wait_for(lambda: _project_status(svc, project.id), seconds=90, what="setup to end")
        run = None
        if project.status is ProjectStatus.READY and stage is not Stage.DISCOVERY:
            run = await planning.create_protocol(svc, project.id, title="One part")
            await planning.start_protocol(svc, run.id)
            run = await wait_for(lambda: _settled(svc, run.id), seconds=90, what="the run to stop or end")
        history, ran = await _history(svc, project.id)

    exceeded = [e.payload for e in history if e.event_type == "budget.exceeded"]
    mine = [p for p in exceeded if p["stage"] == stage]
    stages_run = {r.stage for r in ran}
    if mode == "off":
        assert exceeded == []
    else:
        assert mine, exceeded
        assert {(p["scope"], p["mode"]) for p in mine} == {(case.scope, mode)}
        assert mine[0]["expected"] > 0
        assert mine[0]["source"].startswith("setting TASKSGODZILLA_")
    if mode != "enforce":
        assert stage in stages_run
        if stage is Stage.DISCOVERY:
            assert project.status is ProjectStatus.READY
        else:
            assert run is not None
            assert run.status is P.COMPLETED
        return
    assert stage not in stages_run  # refused before its agent started
    if stage is Stage.DISCOVERY:
        assert project.status is ProjectStatus.FAILED
        [failed] = [e for e in history if e.event_type == "project.setup_failed"]
        assert failed.payload["reason"].startswith(case.reason + " budget")
        return
    assert run is not None
    assert run.status is P.BLOCKED
    assert run.last_error.startswith(case.reason + " budget"), run.last_error
    if stage in (Stage.EXECUTION, Stage.QA):
        async with svc.database.read() as conn:
            [step] = await steps.list_for_protocol(conn, run.id)
        assert (step.status, step.last_error) == (S.BLOCKED, run.last_error)


async def test_after_the_project_ceiling_was_passed_no_planning_agent_runs(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, max_cost_per_project_usd=1.0)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: _project_status(svc, project.id), what="project setup")
        async with svc.database.transaction() as conn:  # an earlier run spent $1.50
            spent = await agent_runs.start(
                conn,
                project_id=project.id,
                stage=Stage.EXECUTION,
                engine="codex",
                model="gpt-5.1",
                prompt_version=None,
            )
            await agent_runs.finish(conn, spent.id, status=AgentRunStatus.SUCCEEDED, cost_usd=Decimal("1.5"))
        run = await planning.create_protocol(svc, project.id, title="One part")
        await planning.start_protocol(svc, run.id)
        run = await wait_for(lambda: _settled(svc, run.id), seconds=90, what="the run to stop")
        _, ran = await _history(svc, project.id)

    assert run.status is P.BLOCKED
    assert run.last_error == (
        "the project budget is spent (1.5 of 1, set by setting TASKSGODZILLA_MAX_COST_PER_PROJECT_USD)"
    )
    assert [r.stage for r in ran] == [Stage.EXECUTION]  # the seeded one only


async def test_a_raise_lets_a_blocked_step_continue(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_PLAN_STEPS", "1")
    settings = workflow_settings(tmp_path, max_tokens_per_step=50)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: _project_status(svc, project.id), what="project setup")
        run = await planning.create_protocol(svc, project.id, title="One part")
        await planning.start_protocol(svc, run.id)
        await wait_for(lambda: _settled(svc, run.id), seconds=90, what="the budget to block the run")
        async with svc.database.read() as conn:
            [step] = await steps.list_for_protocol(conn, run.id)
        assert step.status is S.BLOCKED

        # 50 + 2000: execution (1000 expected) fits, then QA (120 used + 1000 expected) too.
        raised = await raise_budget(svc, None, "step", 2000, by="alice", step_run_id=step.id)
        await controls.retry_step(svc, step.id, by="alice")
        run = await wait_for(lambda: _settled(svc, run.id), seconds=90, what="the run to end")
        history, ran = await _history(svc, project.id)

    assert raised["project_id"] == project.id
    assert raised["protocol_run_id"] == run.id
    assert run.status is P.COMPLETED
    [event] = [e for e in history if e.event_type == "budget.raised"]
    assert (event.step_run_id, event.payload) == (
        step.id,
        {"scope": "step", "amount": 2000, "by": "alice", "month": None},
    )
    assert [r.stage for r in ran if r.step_run_id == step.id] == [Stage.EXECUTION, Stage.QA]
