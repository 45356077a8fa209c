"""Notification channels over HTTP: add, list (never a URL or secret), test, delete; bad input named."""

from __future__ import annotations

import json

import pytest

from app.config import Settings
from app.web.app import create_app
from tests.support.notify_receivers import HttpReceiver
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _settings(tmp_path, **overrides) -> Settings:
    return Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        git_allow_local_remotes=True,
        **overrides,
    )


async def _project(client, tmp_path) -> int:
    repos = make_repos(tmp_path)
    created = await client.post(
        "/projects", json={"name": "demo", "local_path": str(repos.local)}, headers=AUTH
    )
    assert created.status == 201, await created.text()
    return (await created.json())["id"]


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(_settings(tmp_path, notify_allow_private_urls=True), database_url))


async def test_a_webhook_channel_is_added_listed_tested_and_deleted(client, tmp_path) -> None:
    project_id = await _project(client, tmp_path)
    url = f"/projects/{project_id}/notifications"
    async with HttpReceiver("webhook") as receiver:
        created = await client.post(
            url,
            json={"name": "ops", "channel_type": "webhook", "url": receiver.url, "kinds": ["pr.ready"]},
            headers=AUTH,
        )
        assert created.status == 201, await created.text()
        channel = await created.json()
        assert channel["host"] == "127.0.0.1"
        assert channel["kinds"] == ["pr.ready"]
        assert len(channel["secret"]) >= 32  # made by the service, shown this once
        receiver.secret = channel["secret"]

        listed = await (await client.get(url, headers=AUTH)).json()
        assert [c["name"] for c in listed] == ["ops"]
        assert listed[0]["secret"] is None
        assert "s3cr3t-path-token" not in json.dumps(listed)

        tested = await client.post(f"{url}/{channel['id']}/test", headers=AUTH)
        assert await tested.json() == {"delivered": True, "error": None}
        [got] = receiver.received
        assert got.json()["kind"] == "test"
        assert got.json()["project"]["name"] == "demo"

        receiver.secret = "another-secret-entirely"  # the receiver now refuses the signature
        refused = await (await client.post(f"{url}/{channel['id']}/test", headers=AUTH)).json()
        assert refused["delivered"] is False
        assert "401" in refused["error"]
        assert "s3cr3t-path-token" not in refused["error"]

    deleted = await client.delete(f"{url}/{channel['id']}", headers=AUTH)
    assert deleted.status == 204
    assert await (await client.get(url, headers=AUTH)).json() == []
    for missing in (f"{url}/{channel['id']}", f"{url}/not-a-number"):
        again = await client.delete(missing, headers=AUTH)
        assert again.status == 404, await again.text()
    events = await (await client.get(f"/projects/{project_id}/events", headers=AUTH)).json()
    kinds = [e["event_type"] for e in events["items"]]
    assert "notification.channel_added" in kinds
    assert "notification.channel_deleted" in kinds
    assert "s3cr3t-path-token" not in json.dumps(events)
    assert channel["secret"] not in json.dumps(events)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "name": "x",
                "channel_type": "webhook",
                "url": "https://hooks.example.com/x",
                "kinds": ["run.exploded"],
            },
            "kinds",
        ),
        ({"name": "x", "channel_type": "pager", "url": "https://hooks.example.com/x"}, "channel_type"),
        ({"name": "x", "channel_type": "webhook"}, "url"),
        ({"name": "x", "channel_type": "webhook", "url": "ftp://hooks.example.com/x"}, "url"),
        ({"name": "x", "channel_type": "slack", "url": "https://169.254.169.254/latest"}, "url"),
        ({"name": "x", "channel_type": "slack", "url": "https://metadata.google.internal/x"}, "url"),
        ({"name": "x", "channel_type": "email", "recipients": ["dev@example.test"]}, "channel_type"),
        ({"name": "bad name!", "channel_type": "slack", "url": "https://hooks.example.com/x"}, "name"),
        (
            {"name": "x", "channel_type": "webhook", "url": "https://hooks.example.com/x", "secret": "short"},
            "secret",
        ),
    ],
)
async def test_bad_channels_are_refused_naming_the_field(client, tmp_path, body, field) -> None:
    project_id = await _project(client, tmp_path)
    response = await client.post(f"/projects/{project_id}/notifications", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    assert field in await response.text()


async def test_private_addresses_need_the_setting(database_url, aiohttp_client, tmp_path) -> None:
    client = await aiohttp_client(create_app(_settings(tmp_path), database_url))
    project_id = await _project(client, tmp_path)
    for url in (
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://localhost/hook",
        "http://hooks.example.com/x",
    ):
        body = {"name": "x", "channel_type": "slack", "url": url}
        response = await client.post(f"/projects/{project_id}/notifications", json=body, headers=AUTH)
        assert response.status == 422, url
        assert "url" in await response.text()
        assert url not in await response.text()  # a URL may carry a token: never repeated


async def test_an_unknown_project_is_404(client) -> None:
    response = await client.get("/projects/999999/notifications", headers=AUTH)
    assert response.status == 404
