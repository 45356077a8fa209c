"""Budget raises over HTTP: each level's scopes, bad input named, unknown subjects 404."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.web.app import create_app
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


async def test_a_project_budget_raise_is_recorded_with_its_actor(client, tmp_path) -> None:
    repos = make_repos(tmp_path)
    created = await client.post(
        "/projects", json={"name": "demo", "local_path": str(repos.local)}, headers=AUTH
    )
    project = await created.json()
    url = f"/projects/{project['id']}/budget/raise"

    response = await client.post(url, json={"scope": "month_cost", "amount": 12.5}, headers=AUTH)
    assert response.status == 201, await response.text()
    body = await response.json()
    assert {k: body[k] for k in ("project_id", "scope", "amount", "by")} == {
        "project_id": project["id"],
        "scope": "month_cost",
        "amount": 12.5,
        "by": "api",
    }
    assert len(body["month"]) == 7

    for bad, field in (
        ({"scope": "step", "amount": 1}, "scope"),
        ({"scope": "month", "amount": -1}, "amount"),
    ):
        refused = await client.post(url, json=bad, headers=AUTH)
        assert refused.status == 422
        assert field in await refused.text()

    listed = await (await client.get(f"/projects/{project['id']}/events", headers=AUTH)).json()
    assert [e["payload"]["by"] for e in listed["items"] if e["event_type"] == "budget.raised"] == ["api"]


async def test_raising_the_budget_of_an_unknown_run_or_step_is_404(client) -> None:
    for url, scope in (
        ("/protocols/999999/budget/raise", "protocol"),
        ("/steps/999999/budget/raise", "step"),
    ):
        response = await client.post(url, json={"scope": scope, "amount": 100}, headers=AUTH)
        assert response.status == 404, await response.text()
