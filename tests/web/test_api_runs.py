"""Agent runs, transcripts, artifacts and the queue view, after a real pipeline ran."""

from __future__ import annotations

import os

import pytest

from app.services import planning, projects
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.workflow import make_repos, project_ready, run_status, wait_for, workflow_settings

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def finished(database_url, aiohttp_client, tmp_path):
    # database_url first: it must outlive the client (and the worker inside it) at teardown.
    """A client on a service with its worker, and a protocol it has run to completion."""
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, api_token=TOKEN)
    client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
    svc = client.app[SERVICES]
    project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
    await wait_for(lambda: project_ready(svc, project.id), what="setup")
    run = await planning.create_protocol(svc, project.id, title="Two parts")
    await planning.start_protocol(svc, run.id)

    async def completed():
        return await run_status(svc, run.id) == "completed"

    await wait_for(completed, what="completion")
    return client, run


async def test_agent_runs_logs_artifacts_and_queue(finished):
    client, run = finished
    steps = await (await client.get(f"/protocols/{run.id}/steps", headers=AUTH)).json()
    first = steps["items"][0]
    runs = await (await client.get(f"/steps/{first['id']}/agent_runs", headers=AUTH)).json()
    assert [(r["stage"], r["status"], r["input_tokens"]) for r in runs["items"]] == [
        ("execution", "succeeded", 100),
        ("qa", "succeeded", 100),
    ]
    log = await client.get(f"/agent_runs/{runs['items'][0]['id']}/log", headers=AUTH)
    assert log.status == 200
    assert "step 01 written" in await log.text()
    files = await (await client.get(f"/protocols/{run.id}/artifacts", headers=AUTH)).json()
    assert files["items"] == ["01-part-1.md", "02-part-2.md", "context.md", "log.md", "plan.md"]
    plan = await client.get(f"/protocols/{run.id}/artifacts/01-part-1.md", headers=AUTH)
    assert (await plan.text()).startswith("# Part 1")
    for bad in ("../../../etc/passwd", "%2e%2e/secret", ".git/config"):
        refused = await client.get(f"/protocols/{run.id}/artifacts/{bad}", headers=AUTH)
        assert refused.status in (404, 422), bad
    queue = await (await client.get("/queue", headers=AUTH)).json()
    assert "execute_step_job" not in queue["jobs"]  # the queue is what waits or runs; both steps are done
    scraped = await (await client.get("/metrics", headers=AUTH)).text()
    tries = 'tasksgodzilla_job_duration_seconds_count{outcome="succeeded",task="execute_step_job"} 2.0'
    assert tries in scraped.splitlines()  # finished tries are the job-duration histogram's
