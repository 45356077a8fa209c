"""The application shell: health, the error envelope, correlation ids, bearer authentication."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from app.config import Settings
from app.domain.scopes import SERVICE
from app.errors import NotFoundError
from app.store import migrate
from app.web.app import create_app
from app.web.scope import scoped
from tests.support.workflow import wait_for


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_client(aiohttp_client):
    async def make(database_url, **settings):
        app = create_app(Settings(**{"run_worker": False, **settings}), database_url)

        async def lookup(request):
            raise NotFoundError("widget 7 not found", field="widget_id")

        async def explode(request):
            raise RuntimeError("secret internals: password=hunter2")

        async def echo(request):
            return web.json_response(await request.json())

        app.router.add_get("/test/lookup", scoped(SERVICE)(lookup))
        app.router.add_get("/test/explode", scoped(SERVICE)(explode))
        app.router.add_post("/test/echo", scoped(SERVICE)(echo))
        return await aiohttp_client(app)

    return make


async def test_health_reports_database_and_migration_head(make_client, database_url):
    client = await make_client(database_url)
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["migrations"] == {"current": migrate.head_revision(), "head": migrate.head_revision()}


async def test_health_reports_each_engine_without_failing_for_one(
    make_client, database_url, codex_bin, tmp_path
):
    plain = tmp_path / "agent"
    plain.write_text("not a program\n")
    client = await make_client(
        database_url,
        codex_bin=codex_bin,
        claude_bin=str(tmp_path / "no-claude"),
        command_agent=[str(plain)],
        agent_env_passthrough=["PATH", "HOME"],
    )

    async def answered():
        response = await client.get("/health")
        assert response.status == 200, "the database decides; engines are reported"
        engines = (await response.json())["engines"]
        # a loaded machine may answer "unknown, ask again" first: the probe goes on and is cached
        return engines if engines["codex"]["status"] != "unknown" else None

    engines = await wait_for(answered, seconds=90, what="the codex version probe")
    assert engines["codex"] == {
        "status": "ok",
        "version": "codex-cli 0.169.0",
        "setting": "TASKSGODZILLA_CODEX_BIN",
        "default_for": ["planning", "execution", "qa"],
    }
    assert engines["claude"]["status"] == "error"
    assert engines["claude"]["error"] == (
        f"executable not found: {tmp_path / 'no-claude'} (check TASKSGODZILLA_CLAUDE_BIN)"
    )
    assert engines["command"]["status"] == "error"
    assert "not an executable file" in engines["command"]["error"]
    assert "TASKSGODZILLA_COMMAND_AGENT" in engines["command"]["error"]


async def test_health_is_503_when_the_database_is_down(make_client):
    client = await make_client(f"postgresql://postgres@127.0.0.1:{_closed_port()}/nothing")
    response = await client.get("/health")
    assert response.status == 503
    assert (await response.json())["database"] == "unreachable"


async def test_health_is_503_when_migrations_are_pending(make_client, empty_database_url):
    await asyncio.to_thread(migrate.upgrade, empty_database_url, "0001")  # alembic runs its own loop
    client = await make_client(empty_database_url)
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "migrations_pending"
    assert body["migrations"]["current"] == "0001"


async def test_errors_use_the_json_envelope_with_the_correlation_id(make_client, database_url):
    client = await make_client(database_url)
    response = await client.get("/test/lookup", headers={"X-Request-ID": "trace-123"})
    assert response.status == 404
    assert response.headers["X-Request-ID"] == "trace-123"
    assert await response.json() == {
        "error": {
            "code": "not_found",
            "message": "widget 7 not found",
            "details": {"field": "widget_id"},
            "correlation_id": "trace-123",
        }
    }


async def test_an_unexpected_error_is_a_bare_500(make_client, database_url):
    client = await make_client(database_url)
    response = await client.get("/test/explode")
    assert response.status == 500
    text = await response.text()
    assert "hunter2" not in text
    assert "Traceback" not in text
    assert (await response.json())["error"]["code"] == "internal_error"


async def test_unknown_routes_and_methods_answer_in_json(make_client, database_url):
    client = await make_client(database_url)
    missing = await client.get("/no/such/page")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    wrong = await client.delete("/health")
    assert wrong.status == 405
    assert "GET" in wrong.headers["Allow"]
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_an_oversized_body_is_413(make_client, database_url):
    client = await make_client(database_url, max_request_bytes=2048)
    response = await client.post("/test/echo", data=b'{"a": "' + b"x" * 4096 + b'"}')
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "request_entity_too_large"


async def test_an_unsafe_request_id_is_replaced(make_client, database_url):
    client = await make_client(database_url)
    response = await client.get("/health", headers={"X-Request-ID": "bad id\u2028<script>"})
    assert response.headers["X-Request-ID"] != "bad id\u2028<script>"
    assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong-token-value", 401),
        ("bearer s3cret-token-4242", 401),
        ("s3cret-token-4242", 401),
        ("Bearer s3cret-token-4242", 200),
    ],
)
async def test_bearer_token_guards_everything_but_health(make_client, database_url, authorization, status):
    client = await make_client(database_url, api_token="s3cret-token-4242")
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/test/echo", json={"ok": True}, headers=headers)
    assert response.status == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await response.json())["error"]["code"] == "unauthenticated"
    health = await client.get("/health")
    assert health.status == 200
