"""A secret an agent repeats never reaches a table, an event, the API or the console; a plan holding one
is refused, not committed.

The scripted agent (a real process behind the `command` engine, run by a real worker) puts a known
secret in its structured output: as written, base64-encoded inside a longer credential, and split
over two lines, as an agent that found it in the repository would.
"""

from __future__ import annotations

import base64
import os

import pytest
from sqlalchemy import text

from app.domain.redaction import REDACTED
from app.domain.workspace import protocol_worktree_path
from app.services import planning, projects
from app.store import protocols
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import sign_in
from tests.support.secrets import holds_secret
from tests.support.workflow import git, make_repos, project_ready, run_status, wait_for, workflow_settings

TOKEN = "api-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "ghp_Q7xT2mLk9VbR4sWz8NcYd3HfJa6Pe1Uo"
SETTING = "TASKSGODZILLA_GITHUB_TOKEN"
LEAK = (
    f" The token is {SECRET}."
    f" As a header: Basic {base64.b64encode(b'deploy:' + SECRET.encode()).decode()}."
    f" Wrapped: {SECRET[:13]}\n{SECRET[13:]}"
)


async def stored_everywhere(svc) -> str:
    """Every row of every table (ours and the job queue's), as JSON text."""
    dumps = []
    async with svc.database.read() as conn:
        tables = await conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        )
        for (table,) in tables.all():
            rows = await conn.execute(text(f"SELECT coalesce(json_agg(t)::text, '') FROM \"{table}\" t"))
            dumps.append(f"{table}: {rows.scalar_one()}")
    return "\n".join(dumps)


async def shown(client, run_id: int) -> list[str]:
    """What the API and the console show of a run: its steps, events, agent runs and their logs."""
    pages = []
    for path in (f"/protocols/{run_id}", f"/protocols/{run_id}/steps", f"/protocols/{run_id}/events"):
        pages.append(await (await client.get(path, headers=AUTH)).text())
    steps = await (await client.get(f"/protocols/{run_id}/steps", headers=AUTH)).json()
    for step in steps["items"]:
        pages.append(await (await client.get(f"/steps/{step['id']}/events", headers=AUTH)).text())
        runs = await (await client.get(f"/steps/{step['id']}/agent_runs", headers=AUTH)).json()
        for agent_run in runs["items"]:
            log = await client.get(f"/agent_runs/{agent_run['id']}/log", headers=AUTH)
            pages.append(await log.text())
    await sign_in(client, TOKEN)
    pages.append(await (await client.get(f"/console/protocols/{run_id}")).text())
    for step in steps["items"]:
        pages.append(await (await client.get(f"/console/steps/{step['id']}")).text())
    return pages


@pytest.fixture
def service(database_url, aiohttp_client, tmp_path):
    async def start():
        settings = workflow_settings(tmp_path, api_token=TOKEN, github_token=SECRET)
        client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
        svc = client.app[SERVICES]
        repos = make_repos(tmp_path)
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        run = await planning.create_protocol(svc, project.id, title="Two parts")
        await planning.start_protocol(svc, run.id)
        return client, svc, run

    return start


async def test_a_secret_in_a_qa_summary_reaches_no_table_event_api_or_page(service, monkeypatch):
    monkeypatch.setenv("AGENT_LEAK_QA", LEAK)
    client, svc, run = await service()

    async def completed():
        return await run_status(svc, run.id) == "completed"

    await wait_for(completed, what="the run to complete")
    steps = await (await client.get(f"/protocols/{run.id}/steps", headers=AUTH)).json()
    assert all(REDACTED in step["summary"] for step in steps["items"]), steps
    stored = await stored_everywhere(svc)
    assert '"secrets_redacted": {' in stored  # which secret was found, by name, on agent.finished
    assert f'"structured_output": ["{SETTING}"]' in stored
    assert not holds_secret(stored, SECRET)
    for page in await shown(client, run.id):
        assert not holds_secret(page, SECRET), page[:2000]


async def test_a_plan_holding_a_secret_is_refused_and_nothing_is_committed(service, monkeypatch, tmp_path):
    monkeypatch.setenv("AGENT_LEAK_PLAN", LEAK)
    client, svc, run = await service()

    async def failed():
        return await run_status(svc, run.id) == "failed"

    await wait_for(failed, what="planning to be refused")
    async with svc.database.read() as conn:
        refused = await protocols.get(conn, run.id)
    assert refused.last_error is not None
    assert f"the plan contains the value of {SETTING}" in refused.last_error
    assert refused.head_sha is None
    worktree = protocol_worktree_path(tmp_path / "data" / "projects", "demo", run.name)
    assert git("-C", str(worktree), "rev-list", "--count", "main..HEAD") == "0"  # no plan commit
    assert not (worktree / ".protocols").exists()
    stored = await stored_everywhere(svc)
    assert "plan.rejected" in stored
    assert not holds_secret(stored, SECRET)
    for page in await shown(client, run.id):
        assert not holds_secret(page, SECRET)


async def test_a_secret_in_files_the_agent_wrote_is_never_committed_or_pushed(service, monkeypatch, tmp_path):
    monkeypatch.setenv("AGENT_LEAK_FILES", LEAK)
    client, svc, run = await service()

    async def completed():
        return await run_status(svc, run.id) == "completed"

    await wait_for(completed, what="the run to complete")
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run.id)
    origin = str(tmp_path / "origin.git")
    for index in (1, 2):
        committed = git("--git-dir", origin, "show", f"{run.branch_name}:work/{index:02d}.txt")
        assert committed.startswith(f"step {index:02d}")
        assert REDACTED in committed
        assert not holds_secret(committed, SECRET)
        listed = git("--git-dir", origin, "ls-tree", "-r", "--name-only", run.branch_name, "work")
        assert f"work/{index:02d}.bin" not in listed.split(), "a binary file holding a secret is left out"
    history = git("--git-dir", origin, "log", "-p", "--all")
    assert not holds_secret(history, SECRET)
    stored = await stored_everywhere(svc)
    assert not holds_secret(stored, SECRET)
    steps = await (await client.get(f"/protocols/{run.id}/steps", headers=AUTH)).json()
    first = steps["items"][0]["id"]
    found = await (await client.get(f"/steps/{first}/events?type=step.secrets_scrubbed", headers=AUTH)).json()
    [event] = found["items"]
    assert event["payload"]["files"] == {"work/01.bin": [SETTING], "work/01.txt": [SETTING]}
