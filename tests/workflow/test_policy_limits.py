"""The run's policy `limits` count where budgets are checked (before every agent run): the tighter of
the setting and the policy applies, and `budget.exceeded` names which one set it."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from app.config import Settings
from app.domain.records import AgentRunStatus, Stage
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import BudgetExceededError
from app.services import planning, projects
from app.services.budgets import check_budget
from app.services.context import build_services
from app.services.policy import set_project_policy
from app.store import agent_runs, events, protocols, steps
from tests.support.ci_runs import seed_run
from tests.support.workflow import make_repos, project_ready, running_worker, wait_for, workflow_settings


class _NoQueue:
    async def defer(self, work):  # pragma: no cover - budgets defer nothing
        return True

    async def abort(self, locks):  # pragma: no cover
        return 0

    async def pending_locks(self, queueing_locks):  # pragma: no cover
        return set()


def _services(database, tmp_path, **settings):
    return build_services(
        Settings(data_dir=tmp_path / "data", **settings), database, _NoQueue(), environ={}, engines={}
    )


async def _spend(database, project_id, *, run_id, step_id=None, tokens=0, cost=None):
    async with database.transaction() as conn:
        opened = await agent_runs.start(
            conn,
            project_id=project_id,
            stage=Stage.EXECUTION if step_id else Stage.PLANNING,
            engine="command",
            model=None,
            prompt_version=None,
            protocol_run_id=run_id,
            step_run_id=step_id,
        )
        await agent_runs.finish(
            conn,
            opened.id,
            status=AgentRunStatus.SUCCEEDED,
            input_tokens=tokens,
            cost_usd=None if cost is None else Decimal(cost),
        )


async def _check(svc, seeded, step):
    await check_budget(svc, Stage.EXECUTION, None, seeded.project.id, seeded.run.id, step.id)


async def _exceeded(database, run_id):
    async with database.read() as conn:
        return await events.list_page(conn, protocol_run_id=run_id, event_types=["budget.exceeded"])


async def test_a_policy_step_limit_stops_the_step_naming_the_policy(database, tmp_path):
    seeded = await seed_run(database)
    svc = _services(database, tmp_path)
    step = seeded.steps[1]
    await _spend(database, seeded.project.id, run_id=seeded.run.id, step_id=step.id, tokens=250)
    await set_project_policy(
        svc, seeded.project.id, pack_key="default", overrides={"limits": {"tokens_per_step": 200}}
    )

    with pytest.raises(BudgetExceededError) as stopped:
        await _check(svc, seeded, step)

    assert "policy default@1.0 limits.tokens_per_step" in stopped.value.message
    assert "250 of 200" in stopped.value.message
    [event] = await _exceeded(database, seeded.run.id)
    assert event.payload == {
        "scope": "step",
        "limit": 200,
        "used": 250,
        "expected": 250,  # the mean of the project's execution runs: the one seeded
        "raised": 0,
        "source": "policy default@1.0 limits.tokens_per_step",
        "mode": "enforce",
        "stage": "execution",
    }


async def test_the_setting_wins_when_it_is_tighter_and_the_policy_when_it_is(database, tmp_path):
    seeded = await seed_run(database)
    step = seeded.steps[1]
    await _spend(database, seeded.project.id, run_id=seeded.run.id, step_id=step.id, tokens=150)
    policy = {"limits": {"tokens_per_step": 200, "tokens_per_protocol": 1000}}
    tight = _services(database, tmp_path, max_tokens_per_step=100, max_tokens_per_protocol=5000)
    await set_project_policy(tight, seeded.project.id, pack_key="default", overrides=policy)

    with pytest.raises(BudgetExceededError) as stopped:
        await _check(tight, seeded, step)
    assert "setting TASKSGODZILLA_MAX_TOKENS_PER_STEP" in stopped.value.message

    # A looser setting: the policy's 200 applies; 150 is under it, but another 150 expected is not.
    loose = _services(database, tmp_path, max_tokens_per_step=10_000)
    with pytest.raises(BudgetExceededError) as stopped:
        await _check(loose, seeded, step)
    assert stopped.value.message == (
        "the step budget cannot cover the next execution agent run (150 of 200 used, 150 expected, "
        "set by policy default@1.0 limits.tokens_per_step)"
    )
    first, second = await _exceeded(database, seeded.run.id)
    assert (first.payload["source"], first.payload["limit"]) == (
        "setting TASKSGODZILLA_MAX_TOKENS_PER_STEP",
        100,
    )
    assert (second.payload["source"], second.payload["limit"]) == (
        "policy default@1.0 limits.tokens_per_step",
        200,
    )


async def test_usd_per_protocol_counts_this_runs_agent_runs_only(database, tmp_path):
    seeded = await seed_run(database)
    svc = _services(database, tmp_path)
    async with database.transaction() as conn:
        other = await protocols.create(conn, seeded.project.id, title="Other", slug="other")
    await _spend(database, seeded.project.id, run_id=other.id, tokens=10, cost="5.00")  # another run's
    await _spend(database, seeded.project.id, run_id=seeded.run.id, tokens=10, cost="0.30")
    await set_project_policy(
        svc, seeded.project.id, pack_key="default", overrides={"limits": {"usd_per_protocol": 0.5}}
    )
    await _check(svc, seeded, seeded.steps[1])  # 0.30 of 0.50; no execution run yet, none priced
    assert await _exceeded(database, seeded.run.id) == []

    await _spend(database, seeded.project.id, run_id=seeded.run.id, step_id=seeded.steps[0].id, cost="0.25")
    with pytest.raises(BudgetExceededError) as stopped:
        await _check(svc, seeded, seeded.steps[1])
    assert stopped.value.message == (
        "the protocol_cost budget is spent (0.55 of 0.5, set by policy default@1.0 limits.usd_per_protocol)"
    )


async def test_in_warn_mode_a_policy_limit_is_recorded_and_the_agent_still_runs(database, tmp_path):
    seeded = await seed_run(database)
    svc = _services(database, tmp_path, budget_mode="warn")
    await _spend(database, seeded.project.id, run_id=seeded.run.id, tokens=300)
    await set_project_policy(
        svc, seeded.project.id, pack_key="default", overrides={"limits": {"tokens_per_protocol": 100}}
    )
    await _check(svc, seeded, seeded.steps[1])
    [event] = await _exceeded(database, seeded.run.id)
    assert (event.payload["scope"], event.payload["mode"]) == ("protocol", "warn")
    assert event.payload["source"] == "policy default@1.0 limits.tokens_per_protocol"


async def test_a_run_over_its_policys_step_limit_is_blocked_with_the_policy_as_reason(
    database_url, tmp_path, monkeypatch
):
    """The scripted agent reports 120 tokens a run: the step's agent (100 expected) runs, its QA agent
    (100 expected, no QA run yet) does not fit in the 80 left of the policy's 200: the run is blocked."""
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_PLAN_STEPS", "1")
    settings = workflow_settings(tmp_path, budget_estimate_floor_tokens=100)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        await set_project_policy(
            svc, project.id, pack_key="default", overrides={"limits": {"tokens_per_step": 200}}
        )
        run = await planning.create_protocol(svc, project.id, title="One part")
        await planning.start_protocol(svc, run.id)

        async def run_blocked():
            async with svc.database.snapshot() as conn:
                plan = await steps.list_for_protocol(conn, run.id)
                current = await protocols.get(conn, run.id)
            return (current, plan[0]) if current.status is P.BLOCKED and plan else None

        blocked, step = await wait_for(run_blocked, seconds=90, what="the budget to block the run")
        async with svc.database.read() as conn:
            used = await agent_runs.tokens_used(conn, step_run_id=step.id)
            stages = [r.stage for r in await agent_runs.list_for_step(conn, step.id)]
            kinds = [e.event_type for e in await events.list_page(conn, protocol_run_id=run.id, limit=500)]

    reason = (
        "the step budget cannot cover the next qa agent run (120 of 200 used, 100 expected, "
        "set by policy default@1.0 limits.tokens_per_step)"
    )
    assert blocked.last_error == reason
    assert (step.status, step.last_error) == (S.BLOCKED, reason)
    assert (used, stages) == (120, [Stage.EXECUTION])  # no QA agent ran
    assert "budget.exceeded" in kinds
