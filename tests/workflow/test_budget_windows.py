"""Budgets over what the database holds: the calendar month, unpriced models, `off`, raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from app.config import Settings
from app.domain.budgets import month_start
from app.domain.records import AgentRunStatus, Stage
from app.errors import BudgetExceededError, InvalidInputError
from app.services.budgets import check_budget, raise_budget
from app.services.context import build_services
from app.store import agent_runs, events, projects
from app.store.tables import agent_runs as agent_runs_table


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


async def _project(database):
    async with database.transaction() as conn:
        return await projects.create(conn, name="shop", local_path="/srv/shop")


async def _spend(database, project_id, *, tokens, cost=None, model=None, started=None):
    async with database.transaction() as conn:
        opened = await agent_runs.start(
            conn,
            project_id=project_id,
            stage=Stage.DISCOVERY,
            engine="codex",
            model=model,
            prompt_version=None,
        )
        finished = await agent_runs.finish(
            conn,
            opened.id,
            status=AgentRunStatus.SUCCEEDED,
            input_tokens=tokens,
            cost_usd=None if cost is None else Decimal(cost),
        )
        if started is not None:
            await conn.execute(
                update(agent_runs_table).where(agent_runs_table.c.id == opened.id).values(started_at=started)
            )
    return finished


async def _of_type(database, project_id, kind):
    async with database.read() as conn:
        return await events.list_page(conn, project_id=project_id, event_types=[kind])


async def test_only_this_calendar_months_runs_count_against_the_monthly_budget(database, tmp_path):
    project = await _project(database)
    svc = _services(database, tmp_path, max_tokens_per_project_month=5000, budget_estimate_floor_tokens=0)
    last_month = month_start(datetime.now(UTC)) - timedelta(seconds=1)
    await _spend(database, project.id, tokens=9000, started=last_month)
    # 9000 last month do not count; the next discovery is expected to use as much as the mean (9000).
    with pytest.raises(BudgetExceededError) as stopped:
        await check_budget(svc, Stage.DISCOVERY, None, project.id)
    assert "(0 of 5000 used, 9000 expected," in stopped.value.message

    await _spend(database, project.id, tokens=6000)
    with pytest.raises(BudgetExceededError) as stopped:
        await check_budget(svc, Stage.DISCOVERY, None, project.id)
    assert stopped.value.message == (
        "the month budget is spent (6000 of 5000, set by setting TASKSGODZILLA_MAX_TOKENS_PER_PROJECT_MONTH)"
    )

    raised = await raise_budget(svc, project.id, "month", 20_000, by="alice")
    assert raised["month"] == datetime.now(UTC).strftime("%Y-%m")
    await check_budget(svc, Stage.DISCOVERY, None, project.id)  # 6000 + 7500 expected of 25000


async def test_a_model_without_a_price_is_unknown_and_counts_only_at_the_fallback_price(database, tmp_path):
    project = await _project(database)
    run = await _spend(database, project.id, tokens=10_000, model="mystery-1")
    assert run.model_dump(mode="json")["cost_usd"] is None
    assert run.model_dump(mode="json")["cost_known"] is False

    # No fallback: the unpriced 10,000 tokens count nothing, and that is said once.
    svc = _services(database, tmp_path, max_cost_per_project_usd=1.0)
    await check_budget(svc, Stage.DISCOVERY, "mystery-1", project.id)
    await check_budget(svc, Stage.DISCOVERY, "mystery-1", project.id)
    [warning] = await _of_type(database, project.id, "budget.unpriced")
    assert warning.payload == {"model": "mystery-1"}

    # At $0.20 per 1k they are $2 of the $1.
    priced = _services(database, tmp_path, max_cost_per_project_usd=1.0, unpriced_usd_per_1k_tokens=0.2)
    with pytest.raises(BudgetExceededError) as stopped:
        await check_budget(priced, Stage.DISCOVERY, "mystery-1", project.id)
    assert stopped.value.message.startswith("the project budget is spent (2 of 1, ")

    known = await _spend(database, project.id, tokens=10, cost="0.01", model="gpt-5.1")
    assert known.model_dump(mode="json")["cost_known"] is True


async def test_off_checks_nothing_and_warn_records_without_stopping(database, tmp_path):
    project = await _project(database)
    await _spend(database, project.id, tokens=10, cost="3.00", model="gpt-5.1")
    await check_budget(
        _services(database, tmp_path, max_cost_per_project_usd=1.0, budget_mode="off"),
        Stage.PLANNING,
        None,
        project.id,
    )
    assert await _of_type(database, project.id, "budget.exceeded") == []
    await check_budget(
        _services(database, tmp_path, max_cost_per_project_usd=1.0, budget_mode="warn"),
        Stage.PLANNING,
        None,
        project.id,
    )
    [warned] = await _of_type(database, project.id, "budget.exceeded")
    assert (warned.payload["mode"], warned.payload["stage"], warned.payload["used"]) == (
        "warn",
        "planning",
        3,
    )


async def test_a_raise_names_a_scope_of_its_level(database, tmp_path):
    project = await _project(database)
    svc = _services(database, tmp_path)
    with pytest.raises(InvalidInputError) as refused:
        await raise_budget(svc, project.id, "step", 10, by="alice")
    assert refused.value.details == {"field": "scope"}
    await raise_budget(svc, project.id, "project", 2.5, by="alice")
    [raised] = await _of_type(database, project.id, "budget.raised")
    assert raised.payload == {"scope": "project", "amount": 2.5, "by": "alice", "month": None}
