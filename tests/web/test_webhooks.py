"""The webhook endpoints at the HTTP boundary: secrets, signatures, size, dedupe, a database that is down."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.forges.signatures import github_signature
from app.store.tables import webhook_deliveries
from app.web.app import create_app
from tests.support.ci_runs import (
    GITLAB_SECRET,
    SECOND,
    SECRET,
    applied,
    github_request,
    gitlab_request,
    payload,
    seed_run,
)

CONFIGURED = {"github_webhook_secret": SECRET, "gitlab_webhook_token": GITLAB_SECRET}


@pytest.fixture
def make_client(aiohttp_client):
    async def make(database_url, **settings):
        values = {"run_worker": False, **CONFIGURED, **settings}
        return await aiohttp_client(create_app(Settings(**values), database_url))

    return make


async def _recorded(database) -> int:
    async with database.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(webhook_deliveries)))


@pytest.mark.parametrize("path", ["/webhooks/github", "/webhooks/gitlab"])
async def test_an_unconfigured_secret_is_503_never_accept_all(database_url, database, make_client, path):
    client = await make_client(database_url, github_webhook_secret=None, gitlab_webhook_token=None)
    body = payload("github", "check_suite.completed")
    response = await client.post(path, **github_request("check_suite", body, secret=""))
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "not_configured"
    assert await _recorded(database) == 0


async def test_the_documented_vector_is_accepted_by_the_endpoint(database_url, database, make_client):
    client = await make_client(database_url, github_webhook_secret="It's a Secret to Everybody")
    response = await client.post(
        "/webhooks/github",
        data=b"Hello, World!",
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "doc-vector",
            "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        },
    )
    # Authentic; then its body is not JSON, which is the next thing checked.
    assert response.status == 422
    assert (await response.json())["error"]["details"] == {"field": "body"}


@pytest.mark.parametrize(
    "tamper",
    ["missing", "sha1", "truncated", "reserialised", "other-secret"],
)
async def test_unverified_github_deliveries_are_401_and_not_recorded(
    database_url, database, make_client, tamper
):
    client = await make_client(database_url)
    body = json.dumps(payload("github", "check_suite.completed"), indent=2).encode()
    request = github_request("check_suite", body)
    headers = request["headers"]
    if tamper == "missing":
        del headers["X-Hub-Signature-256"]
    elif tamper == "sha1":
        del headers["X-Hub-Signature-256"]
        headers["X-Hub-Signature"] = "sha1=" + "0" * 40
    elif tamper == "truncated":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"][:40]
    elif tamper == "reserialised":
        request["data"] = json.dumps(json.loads(body)).encode()  # same JSON, other bytes
    else:
        headers["X-Hub-Signature-256"] = github_signature("not-the-secret", body)
    response = await client.post("/webhooks/github", **request)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"
    assert await _recorded(database) == 0


@pytest.mark.parametrize("token", [None, "", "wrong-token", GITLAB_SECRET + "x"])
async def test_unverified_gitlab_deliveries_are_401(database_url, database, make_client, token):
    client = await make_client(database_url)
    request = gitlab_request("Pipeline Hook", payload("gitlab", "pipeline.push"))
    if token is None:
        del request["headers"]["X-Gitlab-Token"]
    else:
        request["headers"]["X-Gitlab-Token"] = token
    response = await client.post("/webhooks/gitlab", **request)
    assert response.status == 401
    assert await _recorded(database) == 0


async def test_webhooks_need_their_signature_not_the_api_bearer_token(database_url, database, make_client):
    client = await make_client(database_url, api_token="api-bearer-token-1")
    body = payload("github", "check_suite.completed")
    signed = await client.post("/webhooks/github", **github_request("check_suite", body))
    assert signed.status == 202
    bearer_only = github_request("check_suite", body)
    del bearer_only["headers"]["X-Hub-Signature-256"]
    bearer_only["headers"]["Authorization"] = "Bearer api-bearer-token-1"
    assert (await client.post("/webhooks/github", **bearer_only)).status == 401
    # The rest of the API still wants the bearer token.
    assert (await client.get("/projects")).status == 401


async def test_the_shared_webhook_token_also_signs(database_url, database, make_client):
    client = await make_client(database_url, github_webhook_secret=None, webhook_token="ci-script-token-9")
    body = payload("github", "status.success")
    response = await client.post(
        "/webhooks/github", **github_request("status", body, secret="ci-script-token-9")
    )
    assert response.status == 202


async def test_an_oversized_body_is_413_before_it_is_verified(database_url, database, make_client):
    client = await make_client(database_url, webhook_max_bytes=4096)
    big = {"padding": "x" * 5000, **payload("github", "check_suite.completed")}
    response = await client.post("/webhooks/github", **github_request("check_suite", big))
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    unsigned = github_request("check_suite", big, secret="wrong")
    assert (await client.post("/webhooks/github", **unsigned)).status == 413


async def test_a_chunked_body_past_the_cap_is_413(database_url, database, make_client):
    client = await make_client(database_url, webhook_max_bytes=4096)
    request = github_request("check_suite", b"{" + b" " * 20_000 + b"}")

    async def chunks():
        data = request["data"]
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    response = await client.post("/webhooks/github", data=chunks(), headers=request["headers"])
    assert response.status == 413
    assert await _recorded(database) == 0


async def test_the_same_delivery_sent_twice_at_once_is_recorded_once(database_url, database, make_client):
    client = await make_client(database_url)
    request = github_request("status", payload("github", "status.success"), delivery="delivery-1")
    first, second = await asyncio.gather(
        client.post("/webhooks/github", **request), client.post("/webhooks/github", **request)
    )
    assert sorted([first.status, second.status]) == [200, 202]
    answers = sorted([(await first.json())["status"], (await second.json())["status"]])
    assert answers == ["duplicate", "queued"]
    assert await _recorded(database) == 1
    # A redelivery later (GitHub's "Redeliver" button) is a duplicate too.
    again = await client.post("/webhooks/github", **request)
    assert (again.status, (await again.json())["status"]) == (200, "duplicate")


async def test_a_delivery_that_can_change_nothing_is_recorded_as_ignored(database_url, database, make_client):
    client = await make_client(database_url)
    request = github_request("check_suite", payload("github", "check_suite.from_fork"), delivery="fork-1")
    response = await client.post("/webhooks/github", **request)
    assert response.status == 200
    assert await response.json() == {"delivery": 1, "status": "ignored", "detail": "check suite of a fork"}
    delivery = await applied(database, "github", "fork-1")
    assert (delivery.outcome, delivery.protocol_run_id) == ("ignored", None)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("path", ["/webhooks/github", "/webhooks/gitlab"])
async def test_a_database_that_is_down_is_5xx_never_2xx(make_client, path):
    client = await make_client(f"postgresql://postgres@127.0.0.1:{_closed_port()}/nothing")
    if path.endswith("github"):
        request = github_request("status", payload("github", "status.success"))
    else:
        request = gitlab_request("Pipeline Hook", payload("gitlab", "pipeline.push"))
    response = await client.post(path, **request)
    assert response.status == 503  # the forge will redeliver
    assert (await response.json())["error"]["code"] == "unavailable"


async def test_a_gitlab_delivery_is_keyed_by_its_idempotency_key(database_url, database, make_client):
    await seed_run(database, ci_provider="gitlab")
    client = await make_client(database_url)
    request = gitlab_request("Pipeline Hook", payload("gitlab", "pipeline.push", sha=SECOND), delivery="gl-1")
    assert (await client.post("/webhooks/gitlab", **request)).status == 202
    request["headers"]["X-Gitlab-Event-UUID"] = "another-uuid-on-retry"
    retry = await client.post("/webhooks/gitlab", **request)
    assert (await retry.json())["status"] == "duplicate"
    assert await _recorded(database) == 1
