"""The webhook sender's address checks at send time: every answer of the name's lookup classified
(a name rebound to a metadata or private address after registration is refused), the connection made
to the answer checked, redirects never followed."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from app.notify.http import DeliveryError, Post, post
from tests.support.notify_receivers import HttpReceiver

SECRET = "whsec-0123456789abcdef-test"


class Rebound(AbstractResolver):
    """DNS answering every name with one address (a record an attacker controls)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": self.address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def _to(receiver: HttpReceiver, host: str) -> Post:
    return Post(f"http://{host}:{receiver.port}/hooks/x", b"{}", {"X-TasksGodzilla-Signature": "sha256=0"})


@pytest.mark.parametrize(
    ("address", "allowed"), [("169.254.169.254", True), ("127.0.0.1", False), ("10.0.0.7", False)]
)
async def test_a_name_that_resolves_to_a_refused_address_is_never_contacted(address, allowed) -> None:
    async with HttpReceiver("webhook", SECRET) as receiver:
        dns = Rebound(address)
        with pytest.raises(DeliveryError) as refused:
            await post(
                _to(receiver, "hooks.example.com"), allow_private=allowed, timeout_seconds=5, resolver=dns
            )
        assert refused.value.retryable is False
        assert address in refused.value.message
        assert dns.asked == ["hooks.example.com"]
        assert receiver.calls == 0


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    async with HttpReceiver("webhook", SECRET) as receiver:
        # A public name (as written) whose lookup gives loopback: allowed here, and reached there.
        with pytest.raises(DeliveryError) as answered:
            await post(
                _to(receiver, "hooks.example.com"),
                allow_private=True,
                timeout_seconds=5,
                resolver=Rebound("127.0.0.1"),
            )
        assert "401" in answered.value.message  # the receiver itself answered (the signature is wrong)
        assert receiver.calls == 1


async def test_a_redirect_is_not_followed_nor_retried() -> None:
    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data")

    app = web.Application()
    app.router.add_post("/hook", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        with pytest.raises(DeliveryError) as refused:
            await post(
                Post(f"http://127.0.0.1:{port}/hook", b"{}", {}), allow_private=True, timeout_seconds=5
            )
        assert "302" in refused.value.message
        assert refused.value.retryable is False
    finally:
        await runner.cleanup()
