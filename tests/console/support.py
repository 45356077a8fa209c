"""Helpers for driving the console over HTTP: the CSRF token of a page, signing in."""

from __future__ import annotations

import re

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_of(client, path: str = "/console/login") -> str:
    response = await client.get(path)
    match = CSRF.search(await response.text())
    assert match, f"no CSRF field on {path}"
    return match.group(1)


async def sign_in(client, token: str) -> None:
    token_field = await csrf_of(client)
    response = await client.post(
        "/console/login", data={"token": token, "csrf_token": token_field}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
