"""`POST /projects/{id}/actions/setup` runs a project's setup again, once at a time; a PATCH of the base
branch links to it."""

from __future__ import annotations

from sqlalchemy import text

from app.config import Settings
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.workflow import make_repos, wait_for

TOKEN = "setup-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_setup_runs_again_once_at_a_time_and_a_new_base_branch_links_to_it(
    database_url, aiohttp_client, tmp_path
):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    client = await aiohttp_client(create_app(settings, database_url))
    repos = make_repos(tmp_path)
    body = {"name": "again", "local_path": str(repos.local)}
    made = await client.post("/projects", json=body, headers=AUTH)
    project = await made.json()
    setup = f"/projects/{project['id']}/actions/setup"

    queued = await client.post(setup, headers=AUTH)  # registration queued one already
    assert queued.status == 409, await queued.text()
    assert "queued already" in (await queued.json())["error"]["message"]

    async with client.app[SERVICES].database.transaction() as conn:  # as if a worker had run it
        await conn.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))
    again = await client.post(setup, headers=AUTH)
    assert again.status == 202, await again.text()
    assert (await again.json())["id"] == project["id"]
    assert (await client.post("/projects/999999/actions/setup", headers=AUTH)).status == 404

    plain = await client.patch(f"/projects/{project['id']}", json={"fix_ci_attempts": 2}, headers=AUTH)
    assert plain.status == 200
    assert "Link" not in plain.headers
    moved = await client.patch(f"/projects/{project['id']}", json={"base_branch": "dev"}, headers=AUTH)
    assert moved.status == 200, await moved.text()
    assert moved.headers["Link"] == f'<{setup}>; rel="setup"'
    assert (await moved.json())["base_branch"] == "dev"
    assert moved.headers["ETag"]

    async def requested() -> bool:
        events = await (await client.get(f"/projects/{project['id']}/events", headers=AUTH)).json()
        return any(e["event_type"] == "project.setup_requested" for e in events["items"]) or None

    assert await wait_for(requested, what="project.setup_requested")
