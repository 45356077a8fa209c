"""Over the whole route table (API, console, streams, service pages): tenant A's tokens never reach
tenant B, and every route declares its scope.

For every route and method, A's project token and A's organisation token (as API headers, or as a
console sign-in for console routes) ask for B's organisation, project, run, step and agent run, and
for each list with B named in the query. Each answer is a 403 (or, for what A may list, a list of A's
own) and no answer holds anything of B's. Streams are followed until an event of A arrives, after
one of B: B's never comes. The operator, asking the same, is not refused: the URLs reach real
handlers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from aiohttp import DummyCookieJar

from app.config import Settings
from app.domain.scopes import RESOURCE_PARAMS, Access
from app.services.events import record
from app.web.app import create_app
from app.web.keys import SERVICES
from app.web.scope import ROUTE_SCOPES, route_table
from tests.support.sse import next_sse
from tests.support.tenants import ConsoleSession, Tenant, console_sign_in, make_tenant

TOKEN = "operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
PARAM = re.compile(r"\{(\w+)(?::[^}]+)?\}")
OTHER_PARAMS = {"action": "start", "branch": "main", "name": "plan.md", "filename": "x"}


@pytest.fixture
async def world(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    client = await aiohttp_client(create_app(settings, database_url), cookie_jar=DummyCookieJar())
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha7q"), await make_tenant(svc, "bravo7q")
    return client, a, b


def _routes(app) -> Iterator[tuple[str, str, Access]]:
    for route, scope in app[ROUTE_SCOPES].items():
        if route.method != "HEAD":
            yield route.method, route.resource.canonical, scope.access


def _url(path: str, values: dict[str, int]) -> str:
    return PARAM.sub(lambda m: str(values.get(m.group(1), OTHER_PARAMS.get(m.group(1), "x"))), path)


async def _ask(client, method: str, url: str, headers: dict[str, str]):
    body = {} if method in ("POST", "PATCH", "PUT") else None
    if url.startswith("/console/") and body is not None:
        return await client.request(method, url, data={}, headers=headers, allow_redirects=False)
    return await client.request(method, url, json=body, headers=headers, allow_redirects=False)


async def _no_leak(response, b: Tenant, what: str) -> None:
    assert response.status != 500, f"{what}: {await response.text()}"
    if response.headers.get("Content-Type", "").startswith("text/event-stream"):
        response.close()
        return
    assert b.marker not in await response.text(), f"{what} shows tenant B's rows"


async def _credentials(client, a: Tenant) -> dict[str, tuple[dict[str, str], ConsoleSession]]:
    """Per kind of token of A: its API headers and its console session."""
    return {
        "project token": (
            {"X-Project-Token": a.project_token},
            await console_sign_in(client, a.project_token),
        ),
        "organisation token": (
            {"X-Organisation-Token": a.organisation_token},
            await console_sign_in(client, a.organisation_token),
        ),
    }


async def test_every_route_declares_its_scope(world):
    client, _, _ = world
    table = route_table(client.app)
    assert len(table) == len(list(client.app.router.routes()))
    assert {path for _, path, _ in _routes(client.app)} >= {"/events/stream", "/console/stream", "/metrics"}


async def test_no_route_lets_a_tenant_reach_another(world):
    client, a, b = world
    checked = 0
    for kind, (api_headers, session) in (await _credentials(client, a)).items():
        for method, path, access in _routes(client.app):
            console = path.startswith("/console/")
            headers = session.headers(method) if console else api_headers
            names = [p for p in PARAM.findall(path) if p in RESOURCE_PARAMS]
            what = f"{kind}: {method} {path}"
            if access is Access.PUBLIC:
                await _no_leak(await _ask(client, method, _url(path, b.ids()), headers), b, what)
                continue
            if names:  # B's resources, by id in the path
                response = await _ask(client, method, _url(path, b.ids()), headers)
                assert response.status == 403, f"{what}: {response.status}"
                await _no_leak(response, b, what)
                checked += 1
                continue
            # No resource in the path: B named in the query is refused, whatever the route reads.
            for name, value in b.ids().items():
                url = f"{_url(path, a.ids())}?{name}={value}"
                response = await _ask(client, method, url, headers)
                assert response.status == 403, f"{what} ?{name}=B: {response.status}"
                checked += 1
            response = await _ask(client, method, _url(path, a.ids()), headers)
            if access is Access.OPERATOR or (access is Access.ORGANISATION and kind == "project token"):
                assert response.status == 403, f"{what}: {response.status}"
            elif response.headers.get("Content-Type", "").startswith("text/event-stream"):
                await _stream_shows_only_a(client, response, a, b, what)
                continue
            await _no_leak(response, b, what)
    assert checked > 100


async def _stream_shows_only_a(client, response, a: Tenant, b: Tenant, what: str) -> None:
    """Follow the open stream: an event of B, then one of A; the first to arrive must be A's."""
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        await record(conn, b.project.id, "project.updated", f"note {b.marker}", fields=[])
    async with svc.database.transaction() as conn:
        await record(conn, a.project.id, "project.updated", f"note {a.marker} after", fields=[])
    try:
        while True:
            message = await next_sse(response)
            assert b.marker not in message.get("data", ""), f"{what} streamed tenant B's event"
            if f"{a.marker} after" in message.get("data", ""):
                return
    finally:
        response.close()


async def test_the_operator_reaches_what_the_tenants_may_not(world):
    """The URLs above name real routes and rows: asked by the operator, none is refused."""
    client, _, b = world
    for method, path, access in _routes(client.app):
        if access is Access.PUBLIC or path.startswith("/console/") or method != "GET":
            continue
        response = await _ask(client, method, _url(path, b.ids()), OPERATOR)
        assert response.status not in (401, 403), f"GET {path}: {response.status}"
        response.close()
