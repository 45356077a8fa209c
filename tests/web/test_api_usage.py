"""Usage totals over HTTP: a protocol run's per stage, a project's per day, month, engine and model;
unknown costs counted apart, never as zero; bad input named; another tenant's usage refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.config import Settings
from app.store import steps
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.tenants import make_tenant
from tests.support.usage_seed import seed_usage

TOKEN = "operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def world(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    client = await aiohttp_client(create_app(settings, database_url))
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha7q"), await make_tenant(svc, "bravo7q")
    async with svc.database.transaction() as conn:
        [second] = await steps.create_many(
            conn, a.run.id, [{"step_index": 2, "name": "part two", "step_file": "02.md"}]
        )
    # Besides the tenant's own execution run (finished without usage: its cost is unknown).
    await seed_usage(svc.database, a.run, [a.step, second])
    return client, a, b


def _cost(totals: dict) -> Decimal | None:
    return None if totals["cost_usd"] is None else Decimal(totals["cost_usd"])


async def test_a_protocol_runs_usage_adds_planning_execution_and_qa(world) -> None:
    client, a, _ = world
    response = await client.get(f"/protocols/{a.run.id}/usage", headers={"X-Project-Token": a.project_token})
    assert response.status == 200, await response.text()
    body = await response.json()
    stages = body["by_stage"]
    assert set(stages) == {"discovery", "planning", "execution", "qa"}
    assert (stages["planning"]["runs"], stages["planning"]["tokens"], _cost(stages["planning"])) == (
        1,
        1200,
        Decimal("0.5"),
    )
    assert stages["planning"]["reasoning_tokens"] == 50
    execution = stages["execution"]
    assert (execution["runs"], execution["unknown_cost_runs"], _cost(execution)) == (3, 1, Decimal("2.5"))
    assert execution["duration_ms"] == 12000, "the run still going is not counted"
    qa = stages["qa"]
    assert (qa["runs"], qa["unknown_cost_runs"], qa["cost_usd"]) == (2, 2, None), "unknown, not $0"
    assert stages["discovery"] == {**stages["discovery"], "runs": 0, "tokens": 0}
    total = body["total"]
    assert (total["runs"], total["unknown_cost_runs"], total["tokens"], _cost(total)) == (
        6,
        3,
        7000,
        Decimal("3"),
    )
    assert total["cached_input_tokens"] == 100
    [second_id] = set(body["by_step"]) - {str(a.step.id)}
    first, second = body["by_step"][str(a.step.id)], body["by_step"][second_id]
    # A step's execution and QA together; the tenant's own unpriced run is the first step's.
    assert (second["runs"], second["unknown_cost_runs"], second["tokens"], _cost(second)) == (
        2,
        1,
        2900,
        Decimal("1.25"),
    )
    assert second["duration_ms"] == 9000
    assert (first["runs"], first["unknown_cost_runs"]) == (3, 2)


async def test_a_projects_usage_by_day_month_engine_and_model(world) -> None:
    client, a, _ = world
    url = f"/projects/{a.project.id}/usage"

    async def rows(query: str) -> list[tuple[str, int, int, Decimal | None]]:
        response = await client.get(f"{url}?{query}", headers=OPERATOR)
        assert response.status == 200, await response.text()
        return [
            (r["key"], r["totals"]["runs"], r["totals"]["unknown_cost_runs"], _cost(r["totals"]))
            for r in (await response.json())["rows"]
        ]

    assert await rows("group=day&since=2026-11-01&until=2026-11-30") == [
        ("2026-11-03", 1, 0, Decimal("0.5")),
        ("2026-11-06", 4, 2, Decimal("2.5")),
    ]
    assert await rows("group=day&since=2026-11-04&until=2026-11-06") == [("2026-11-06", 4, 2, Decimal("2.5"))]
    assert await rows("group=day&since=2026-11-04&until=2026-11-05") == []
    assert len(await rows("group=month&since=0001-01-01&until=9999-12-31")) == 2, "the ends of the calendar"
    months = await rows("group=month")
    assert months[0] == ("2026-11", 5, 2, Decimal("3"))
    assert sum(runs for _, runs, _, _ in months) == 6
    assert await rows("group=engine&until=2026-11-30") == [
        ("codex", 3, 0, Decimal("3")),
        ("command", 2, 2, None),
    ]
    assert await rows("group=model&until=2026-11-30") == [
        ("(engine default)", 2, 2, None),
        ("gpt-5.1", 3, 0, Decimal("3")),
    ]


async def test_bad_usage_queries_are_named_and_others_refused(world) -> None:
    client, a, b = world
    url = f"/projects/{a.project.id}/usage"
    for query, field in (
        ("group=week", "group"),
        ("since=2026-13-01", "since"),
        ("since=2026-11-05&until=2026-11-01", "since"),
        ("until=yesterday", "until"),
        ("per=day", "per"),
    ):
        response = await client.get(f"{url}?{query}", headers=OPERATOR)
        assert response.status == 422, query
        assert (await response.json())["error"]["details"]["field"] == field, query
    assert (await client.get(url)).status == 401
    for path in ("/projects/999999/usage", "/protocols/999999/usage"):
        assert (await client.get(path, headers=OPERATOR)).status == 404, path
    theirs = {"X-Project-Token": b.project_token}
    assert (await client.get(url, headers=theirs)).status == 403
    assert (await client.get(f"/protocols/{a.run.id}/usage", headers=theirs)).status == 403
    own = await client.get(f"/projects/{b.project.id}/usage", headers=theirs)
    assert (await own.json())["total"]["runs"] == 1
