"""`/console` without its trailing slash leads to the console (a permanent redirect), not a 404."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.web.app import create_app


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token="console-token-0123456789", data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_the_console_without_its_slash_redirects_to_it(client, method):
    bare = await client.request(method, "/console", allow_redirects=False)
    assert (bare.status, bare.headers.get("Location")) == (308, "/console/")
    followed = await client.get("/console")
    assert followed.status == 200, "the sign-in page, reached through the console's redirects"
    assert str(followed.url).endswith("/console/login")
