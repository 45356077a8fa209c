"""Before git talks to a remote: the URLs it will use checked, their hosts resolved now, every answer
classified (app.domain.addresses), and https pinned to the answers that were checked.

A name checked at registration could be rebound later (DNS rebinding) to a metadata or private
address; so every clone, fetch, ls-remote and push resolves the host again, just before git runs,
and refuses when any answer is forbidden. For https, git is then told to connect to exactly those
addresses (`http.curloptResolve`, git >= 2.37) and not to follow redirects, so neither a second
lookup nor a redirect can lead it elsewhere. ssh cannot be pinned this way: its host is checked,
and ssh resolves it again itself a moment later (a residual window, documented in the README).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from app.domain.addresses import parse_ip
from app.errors import GitError
from app.git.validation import check_host_reach, check_remote_url, remote_endpoint

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (what git's own lookup would get)."""
    answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in answers]


@dataclass(frozen=True)
class RemoteGuard:
    """The remote policy of one repository: local paths and private addresses allowed or not."""

    allow_local: bool = False
    allow_private: bool = False
    resolver: Resolver = field(default=system_resolver)

    async def pins(self, urls: Iterable[str]) -> list[tuple[str, str]]:
        """The `-c` options that make git connect only to the addresses checked now for `urls`.

        InvalidInputError (field `git_url`) when a URL or any address its host resolves to is
        refused; GitError when a host does not resolve (git could not reach it either).
        """
        config: list[tuple[str, str]] = []
        seen: set[tuple[str, int]] = set()
        https = False
        for url in dict.fromkeys(urls):
            check_remote_url(url, allow_local=self.allow_local, allow_private=self.allow_private)
            endpoint = remote_endpoint(url, allow_local=self.allow_local)
            if endpoint is None:
                continue
            https = https or endpoint.scheme == "https"
            key = (endpoint.host, endpoint.port)
            if key in seen or parse_ip(endpoint.host) is not None:
                continue  # an address as written was classified by check_remote_url
            seen.add(key)
            addresses = await self._resolve(endpoint.host, endpoint.port)
            if endpoint.scheme == "https":
                shown = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
                config.append(("http.curloptResolve", f"{endpoint.host}:{endpoint.port}:{shown}"))
        if https:
            config.append(("http.followRedirects", "false"))
        return config

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            answers = list(dict.fromkeys(await self.resolver(host, port)))
        except (OSError, UnicodeError) as exc:
            raise GitError(f"the git remote's host {host} does not resolve ({exc})", host=host) from None
        if not answers:
            raise GitError(f"the git remote's host {host} does not resolve", host=host)
        for address in answers:
            check_host_reach(host, allow_private=self.allow_private, address=address)
        return answers
