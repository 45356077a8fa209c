"""`tasksgodzilla notify add|list|test|delete` as an operator runs it (real processes, a real receiver)."""

from __future__ import annotations

import asyncio

from tests.cli.test_commands import _env, assert_one_line_error, ok, tg
from tests.support.notify_receivers import HttpReceiver
from tests.support.workflow import make_repos


async def test_a_channel_is_added_listed_tested_and_deleted(tmp_path, database_url) -> None:
    env = _env(tmp_path, database_url, TASKSGODZILLA_NOTIFY_ALLOW_PRIVATE_URLS="true")
    repos = make_repos(tmp_path)

    def run(*args: str) -> str:
        return ok(env, *args)

    await asyncio.to_thread(run, "project", "add", "shop", "--local-path", str(repos.local), "--no-wait")
    async with HttpReceiver("slack") as receiver:
        added = await asyncio.to_thread(
            run, "notify", "add", "shop", "team", "--type", "slack", "--url", receiver.url,
            "--kind", "pr.ready", "--kind", "run.blocked",
        )  # fmt: skip
        channel_id = added.split()[1]
        assert "127.0.0.1" in added
        assert "s3cr3t-path-token" not in added
        listed = await asyncio.to_thread(run, "notify", "list", "shop")
        assert listed.split("\t")[1:3] == ["team", "slack"]
        assert listed.strip().endswith("pr.ready,run.blocked")
        assert (await asyncio.to_thread(run, "notify", "test", "shop", channel_id)).strip() == "delivered"
        assert "test" in receiver.received[0].json()["text"].lower()

    refused = await asyncio.to_thread(
        tg, env, "notify", "add", "shop", "x", "--type", "slack", "--url", "https://169.254.169.254/x"
    )
    assert_one_line_error(refused, 65, "url")
    bad_kind = await asyncio.to_thread(
        tg, env, "notify", "add", "shop", "x", "--type", "slack", "--kind", "run.exploded"
    )
    assert bad_kind.returncode == 2  # click's usage error names the choices
    await asyncio.to_thread(run, "notify", "delete", "shop", channel_id)
    assert (await asyncio.to_thread(run, "notify", "list", "shop")).strip() == "no channels"
    gone = await asyncio.to_thread(tg, env, "notify", "delete", "shop", channel_id)
    assert_one_line_error(gone, 66, "not found")
