"""The console's tenancy: project and organisation sign-ins see their own rows only, fragments and
lists included; repeated form fields and query parameters are refused; failed sign-ins are limited."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.records import ProjectStatus
from app.store import projects as project_store
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import csrf_of, sign_in
from tests.support.tenants import make_tenant

TOKEN = "console-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        login_failures_per_minute=3,
        git_allow_local_remotes=True,  # the repositories' origins are local folders
    )
    return await aiohttp_client(create_app(settings, database_url))


async def _project(client, name: str):
    async with client.app[SERVICES].database.transaction() as conn:
        made = await project_store.create(conn, name=name, local_path=f"/srv/{name}")
        return await project_store.set_status(
            conn, made.id, ProjectStatus.READY, expected_version=made.version
        )


async def test_a_project_sign_in_lists_its_own_project_only(client):
    mine, theirs = await _project(client, "mine-p1"), await _project(client, "theirs-p2")
    issued = await client.post(f"/projects/{mine.id}/token", headers=OPERATOR)
    await sign_in(client, (await issued.json())["token"])
    table = await client.get("/console/projects/live")
    assert table.status == 200
    text = await table.text()
    assert mine.name in text
    assert theirs.name not in text, "the projects fragment listed another project"
    activity = await client.get("/console/activity")
    assert theirs.name not in await activity.text()


async def test_an_organisation_sign_in_sees_its_organisations_projects_only(client, tmp_path):
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha7q"), await make_tenant(svc, "bravo7q")
    await sign_in(client, a.organisation_token)
    home = await client.get("/console/")
    assert home.status == 200
    assert a.project.name in await home.text()
    assert b.marker not in await home.text()
    assert (await client.get(f"/console/projects/{a.project.id}")).status == 200
    assert (await client.get(f"/console/projects/{b.project.id}")).status == 403
    assert (await client.get(f"/console/steps/{b.step.id}")).status == 403
    assert b.marker not in await (await client.get("/console/activity")).text()
    assert (await client.get(f"/console/activity?project_id={b.project.id}")).status == 403

    csrf = await csrf_of(client, "/console/projects/new")
    made = await client.post(
        "/console/projects",
        data={"csrf_token": csrf, "name": "from-console", "local_path": f"{tmp_path}/from-console"},
        allow_redirects=False,
    )
    assert made.status == 303, await made.text()
    async with svc.database.read() as conn:
        found = await project_store.list_page(conn, organisation_id=a.organisation.id)
    assert "from-console" in [p.name for p in found]

    # A new organisation token ends the sessions signed in with the old one.
    await client.post(f"/organisations/{a.organisation.id}/token", headers=OPERATOR)
    assert (await client.get("/console/", allow_redirects=False)).status == 303


async def test_a_project_sign_in_cannot_register_projects(client):
    mine = await _project(client, "mine")
    issued = await client.post(f"/projects/{mine.id}/token", headers=OPERATOR)
    await sign_in(client, (await issued.json())["token"])
    assert (await client.get("/console/projects/new")).status == 403
    csrf = await csrf_of(client, f"/console/projects/{mine.id}")
    refused = await client.post(
        "/console/projects", data={"csrf_token": csrf, "name": "x", "local_path": "/x"}
    )
    assert refused.status == 403


async def test_repeated_form_fields_and_query_parameters_are_refused(client):
    mine = await _project(client, "mine")
    await sign_in(client, TOKEN)
    csrf = await csrf_of(client, f"/console/projects/{mine.id}")
    form = [("csrf_token", csrf), ("ci_provider", "github"), ("ci_provider", "gitlab")]
    twice = await client.post(f"/console/projects/{mine.id}/settings", data=form)
    assert twice.status == 422
    assert "ci_provider" in await twice.text()
    token_twice = [("csrf_token", csrf), ("csrf_token", "forged"), ("ci_provider", "github")]
    assert (await client.post(f"/console/projects/{mine.id}/settings", data=token_twice)).status == 422
    assert (await client.get("/console/activity?type=step.&type=qa.")).status == 422
    filtered = await client.get(f"/console/projects/{mine.id}?status=running&status=failed")
    assert filtered.status == 200, "the status filter is declared as repeatable"


async def test_failed_sign_ins_are_limited_per_client(client):
    csrf = await csrf_of(client)
    for _ in range(3):
        wrong = await client.post("/console/login", data={"token": "nope", "csrf_token": csrf})
        assert wrong.status == 401
    limited = await client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf})
    assert limited.status == 429, "past the limit even the right token waits"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in await limited.text()
