"""Tenancy over HTTP: a parameter is read once (repeats refused), a token lookup costs the same whether
a token was sent or not, organisations and their tokens, and start-up refuses an undeclared route."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from sqlalchemy import event

import app.web
from app.config import Settings
from app.domain.records import ProjectStatus
from app.domain.scopes import SERVICE
from app.store import projects as project_store
from app.web.app import create_app
from app.web.keys import SERVICES
from app.web.scope import scoped
from tests.support.ci_runs import SECRET, github_request
from tests.support.tenants import make_tenant

TOKEN = "operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        github_webhook_secret=SECRET,
        git_allow_local_remotes=True,  # the repositories' origins are local folders
    )
    return await aiohttp_client(create_app(settings, database_url))


async def _project(client, name: str) -> tuple[int, str]:
    """A ready project and its own token."""
    async with client.app[SERVICES].database.transaction() as conn:
        made = await project_store.create(conn, name=name, local_path=f"/srv/{name}")
        await project_store.set_status(conn, made.id, ProjectStatus.READY, expected_version=made.version)
    issued = await client.post(f"/projects/{made.id}/token", headers=OPERATOR)
    return made.id, (await issued.json())["token"]


async def test_a_repeated_query_parameter_is_refused_before_any_check_reads_it(client):
    theirs, _ = await _project(client, "theirs")
    mine, token = await _project(client, "mine")
    # The check once read the first value and the stream the last: project 1's events, for project 2.
    response = await client.get(
        f"/events/stream?project_id={mine}&project_id={theirs}", headers={"X-Project-Token": token}
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"]["field"] == "project_id"
    for url in ("/projects?limit=1&limit=2", "/health?x=1&x=2", f"/projects/{mine}?cursor=a&cursor=b"):
        refused = await client.get(url, headers=OPERATOR)
        assert refused.status == 422, url
    allowed = await client.get(f"/projects/{mine}/protocols?status=running&status=failed", headers=OPERATOR)
    assert allowed.status == 200, "a parameter declared as a list may repeat"


async def test_a_repeated_json_key_is_refused(client):
    mine, _ = await _project(client, "mine")
    response = await client.post(
        f"/projects/{mine}/protocols",
        data=b'{"title": "a", "title": "b"}',
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"]["field"] == "title"
    nested = await client.post(
        f"/projects/{mine}/clarifications",
        data=b'{"answers": {"ci_provider": "github", "ci_provider": "gitlab"}}',
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert nested.status == 422
    hook = await client.post(
        "/webhooks/github", **github_request("ping", b'{"zen": "a", "zen": "b", "hook_id": 1}')
    )
    assert hook.status == 422, await hook.text()


async def test_a_missing_and_a_wrong_token_cost_the_same_lookup(client, monkeypatch):
    mine, token = await _project(client, "mine")
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    fetchrow = asyncpg.connection.Connection.fetchrow

    async def driver_seen(self, query, *args, **kwargs):  # reads through the driver (Database.driver_read)
        statements.append(query)
        return await fetchrow(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "fetchrow", driver_seen)
    engine = client.app[SERVICES].database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        runs = {}
        for name, headers in {
            "missing": {},
            "empty": {"X-Project-Token": ""},
            "wrong project token": {"X-Project-Token": "tgp_wrong"},
            "wrong organisation token": {"X-Organisation-Token": "tgo_wrong"},
            "too long": {"X-Project-Token": "x" * 5000},
            "wrong bearer": {"Authorization": "Bearer nope"},
        }.items():
            statements.clear()
            response = await client.get(f"/projects/{mine}", headers=headers)
            assert response.status == 401, name
            runs[name] = list(statements)
        statements.clear()
        assert (await client.get(f"/projects/{mine}", headers={"X-Project-Token": token})).status == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(set(map(tuple, runs.values()))) == 1, runs
    assert len(runs["missing"]) == 1, "one lookup, whatever was offered"
    assert statements[0] == runs["missing"][0], "a valid token is looked up by the same statement"


async def test_organisations_own_their_projects_and_tokens(client, tmp_path):
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha7q"), await make_tenant(svc, "bravo7q")
    org = {"X-Organisation-Token": a.organisation_token}

    made = await client.post("/organisations", json={"name": "Acme"}, headers=OPERATOR)
    assert made.status == 201
    assert (await made.json())["slug"] == "acme"
    taken = await client.post("/organisations", json={"name": "Other", "slug": "acme"}, headers=OPERATOR)
    assert taken.status == 409
    hidden = await client.post("/organisations", json={"name": "Ac\u202eme"}, headers=OPERATOR)
    assert hidden.status == 422
    assert (await client.post("/organisations", json={"name": "Mine"}, headers=org)).status == 403

    listed = await (await client.get("/organisations", headers=org)).json()
    assert [o["id"] for o in listed["items"]] == [a.organisation.id]
    everyone = await (await client.get("/organisations", headers=OPERATOR)).json()
    assert {o["slug"] for o in everyone["items"]} >= {"default", "acme", a.organisation.slug}
    project_token = {"X-Project-Token": a.project_token}
    assert (await client.get("/organisations", headers=project_token)).status == 403
    assert (await client.get(f"/organisations/{a.organisation.id}", headers=project_token)).status == 403

    assert (await client.get(f"/projects/{a.project.id}", headers=org)).status == 200
    assert (await client.get(f"/projects/{b.project.id}", headers=org)).status == 403
    assert (await client.get(f"/protocols/{a.run.id}", headers=org)).status == 200
    mine = await (await client.get("/projects", headers=org)).json()
    assert [p["id"] for p in mine["items"]] == [a.project.id]

    body = {"name": "fresh", "local_path": f"{tmp_path}/fresh"}
    created = await client.post(f"/organisations/{a.organisation.id}/projects", json=body, headers=org)
    assert created.status == 201, await created.text()
    assert (await created.json())["organisation_id"] == a.organisation.id
    elsewhere = await client.post(
        f"/organisations/{b.organisation.id}/projects", json={**body, "name": "x"}, headers=org
    )
    assert elsewhere.status == 403
    plain = await client.post(
        "/projects", json={"name": "plain", "local_path": f"{tmp_path}/plain"}, headers=org
    )
    assert (await plain.json())["organisation_id"] == a.organisation.id, "POST /projects: the caller's own"
    by_operator = await client.post(
        "/projects", json={"name": "op", "local_path": f"{tmp_path}/op"}, headers=OPERATOR
    )
    default = await (await client.get("/organisations", headers=OPERATOR)).json()
    default_id = next(o["id"] for o in default["items"] if o["slug"] == "default")
    assert (await by_operator.json())["organisation_id"] == default_id
    assert (await client.post("/projects", json=body, headers=project_token)).status == 403

    # Another organisation's folder is taken, but whose project it is stays unsaid.
    clash = {"name": "clash", "local_path": b.project.local_path}
    conflict = await client.post("/projects", json=clash, headers=org)
    assert conflict.status == 409
    assert b.marker not in await conflict.text()

    # An organisation issues its projects' tokens, not its own; a new token ends the old one.
    assert (await client.post(f"/projects/{a.project.id}/token", headers=org)).status == 201
    assert (await client.post(f"/projects/{b.project.id}/token", headers=org)).status == 403
    assert (await client.post(f"/organisations/{a.organisation.id}/token", headers=org)).status == 403
    renewed = await client.post(f"/organisations/{a.organisation.id}/token", headers=OPERATOR)
    assert renewed.status == 201
    assert (await client.get("/projects", headers=org)).status == 401
    fresh = {"X-Organisation-Token": (await renewed.json())["token"]}
    assert (await client.get("/projects", headers=fresh)).status == 200
    both = {**fresh, "X-Project-Token": a.project_token}
    assert (await client.get("/projects", headers=both)).status == 401, "two tokens: neither counts"


async def test_an_idempotency_key_is_the_callers_own(client, tmp_path):
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha7q"), await make_tenant(svc, "bravo7q")
    key = {"Idempotency-Key": "same-key"}
    body = {"name": "twin", "local_path": f"{tmp_path}/twin"}
    first = await client.post(
        "/projects", json=body, headers={**key, "X-Organisation-Token": a.organisation_token}
    )
    assert first.status == 201
    second = await client.post(
        "/projects",
        json={**body, "name": "twin-b", "local_path": f"{tmp_path}/twin-b"},
        headers={**key, "X-Organisation-Token": b.organisation_token},
    )
    assert second.status == 201, await second.text()
    assert "Idempotent-Replayed" not in second.headers
    assert (await second.json())["organisation_id"] == b.organisation.id


async def test_start_up_refuses_a_route_that_declares_no_scope(database_url, aiohttp_client, tmp_path):
    app = create_app(Settings(run_worker=False, data_dir=tmp_path / "data"), database_url)

    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="everyone's rows")

    app.router.add_get("/forgotten", forgotten)
    with pytest.raises(RuntimeError, match="GET /forgotten: no scope declared"):
        await aiohttp_client(app)


def test_handlers_read_parameters_only_as_the_scope_check_read_them():
    """Only app/web/scope.py reads the query or the path's parameters from the request; everything
    else takes them from what it checked (`resolved`), so no handler reads a value the check did not."""
    web_root = Path(app.web.__file__).parent
    reads = re.compile(
        r"request\.(rel_url\.)?query\b|match_info\[|match_info\.get\(|dict\(request\.match_info"
    )
    offenders = [
        f"{path.relative_to(web_root)}:{number}"
        for path in web_root.rglob("*.py")
        if path.name != "scope.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert offenders == []


async def test_start_up_refuses_a_sub_application_that_checks_nothing(database_url, aiohttp_client, tmp_path):
    app = create_app(Settings(run_worker=False, data_dir=tmp_path / "data"), database_url)
    other = web.Application()

    @scoped(SERVICE)
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    other.router.add_get("/page", page)
    app.add_subapp("/other/", other)
    with pytest.raises(RuntimeError, match="sub-application at /other does not check its own scope"):
        await aiohttp_client(app)
