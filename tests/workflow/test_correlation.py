"""One correlation id per protocol run, from the request that created it to its last event: the run
carries it, its jobs stamp their events with it, its agents see it, its commits name it, and
`GET /events?correlation_id=` finds everything about the run."""

from __future__ import annotations

import json
import os

from app.web.app import create_app
from tests.support.workflow import git, make_repos, shared_with_agents, wait_for, workflow_settings

TOKEN = "correlation-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FOLLOW = "req-follow-me-0001"


async def test_one_run_is_followed_from_its_request_to_its_last_event(
    database_url, tmp_path, aiohttp_client, monkeypatch
):
    repos = make_repos(tmp_path)
    prompts = shared_with_agents(tmp_path / "prompts.jsonl")
    monkeypatch.setenv("AGENT_PROMPT_LOG", str(prompts))
    settings = workflow_settings(tmp_path, api_token=TOKEN)
    client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
    created = await client.post(
        "/projects", json={"name": "demo", "local_path": str(repos.local)}, headers=AUTH
    )
    assert created.status == 201, await created.text()
    project = await created.json()

    async def ready() -> bool:
        return (await (await client.get(f"/projects/{project['id']}", headers=AUTH)).json())[
            "status"
        ] == "ready"

    await wait_for(ready, what="setup")
    started = await client.post(
        f"/projects/{project['id']}/protocols",
        json={"title": "Follow me", "start": True},
        headers={**AUTH, "X-Request-ID": FOLLOW},
    )
    assert started.status == 201, await started.text()
    run = await started.json()
    assert run["correlation_id"] == FOLLOW

    async def completed() -> dict | None:
        found = await (await client.get(f"/protocols/{run['id']}", headers=AUTH)).json()
        return found if found["status"] == "completed" else None

    finished = await wait_for(completed, seconds=120, what="the run to complete")

    # Every event of the run, whoever recorded it, and nothing of another run or of the setup.
    page = await client.get(f"/events?correlation_id={FOLLOW}&limit=500", headers=AUTH)
    assert page.status == 200, await page.text()
    items = (await page.json())["items"]
    assert {e["protocol_run_id"] for e in items} == {run["id"]}
    kinds = {e["event_type"] for e in items}
    assert {"protocol.created", "agent.started", "step.committed", "qa.verdict"} <= kinds, kinds
    # The run's jobs record under its id (not `job-<n>`): its events carry it.
    stamped = [e for e in items if e["event_type"] == "step.committed"]
    assert all(e["correlation_id"] == FOLLOW for e in stamped), [e["correlation_id"] for e in stamped]
    everything = await client.get(f"/protocols/{run['id']}/events?limit=500", headers=AUTH)
    assert len((await everything.json())["items"]) == len(items)

    # Its agents were given it; its commits name it.
    seen = [json.loads(line) for line in prompts.read_text().splitlines()]
    ran = [s for s in seen if s["stage"] in ("planning", "execution", "qa")]
    assert ran
    assert {s["correlation_id"] for s in ran} == {FOLLOW}
    bodies = git("--git-dir", str(repos.origin), "log", "--format=%B%x00", finished["branch_name"], "^main")
    messages = [m.strip() for m in bodies.split("\0") if m.strip()]
    assert messages
    assert all(m.endswith(f"Correlation-Id: {FOLLOW}") for m in messages), messages


async def test_a_bad_correlation_id_is_a_422_naming_it(database_url, tmp_path, aiohttp_client):
    settings = workflow_settings(tmp_path, api_token=TOKEN, run_worker=False)
    client = await aiohttp_client(create_app(settings, database_url))
    refused = await client.get("/events?correlation_id=a%20b", headers=AUTH)
    assert refused.status == 422
    assert (await refused.json())["error"]["details"]["field"] == "correlation_id"
