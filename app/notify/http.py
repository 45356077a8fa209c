"""POSTing a notification to a webhook URL (generic JSON or Slack-compatible): a checked host, a
timeout, no redirects, and errors that never repeat the URL (a Slack URL is its own token).

Every name is resolved again at send time and each answer classified (app.domain.addresses), and the
connection goes to exactly the answers checked: a name rebound to a metadata or private address
after registration is refused.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from app.domain.addresses import Reach, host_reach, reach_of

USER_AGENT = "TasksGodzilla-Notifications"
MAX_ANSWER_BYTES = 4096  # of a refusal's body, kept in the error


class DeliveryError(Exception):
    """A notification not delivered; `retryable` when trying later may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def refusal(host: str, reach: Reach, *, allow_private: bool) -> str | None:
    """Why a notification may not go to `host` (reached as `reach`), or None when it may."""
    if reach is Reach.FORBIDDEN:
        return f"{host} is a link-local, cloud metadata or reserved address: never allowed"
    if reach is Reach.PRIVATE and not allow_private:
        return (
            f"{host} is a loopback or private address: allowed only with "
            "TASKSGODZILLA_NOTIFY_ALLOW_PRIVATE_URLS"
        )
    return None


class CheckedResolver(AbstractResolver):
    """The system resolver, refusing any answer the policy forbids."""

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            why = refusal(
                f"{host} ({answer['host']})", reach_of(answer["host"]), allow_private=self._allow_private
            )
            if why is not None:
                raise DeliveryError(f"notification host {why}", retryable=False)
        return answers

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Post:
    url: str
    body: bytes
    headers: dict[str, str]


async def post(
    request: Post, *, allow_private: bool, timeout_seconds: float, resolver: AbstractResolver | None = None
) -> int:
    """POST the body; the receiver's status when it is 2xx, else DeliveryError (retryable on a
    network failure, a timeout, 408, 429 or a 5xx)."""
    host = urlsplit(request.url).hostname or ""
    why = refusal(host, host_reach(host), allow_private=allow_private)
    if why is not None:
        raise DeliveryError(f"notification host {why}", retryable=False)
    checked = CheckedResolver(allow_private=allow_private, inner=resolver)
    connector = aiohttp.TCPConnector(resolver=checked, force_close=True)
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **request.headers}
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.post(request.url, data=request.body, headers=headers, allow_redirects=False) as answer,
        ):
            text = (await answer.content.read(MAX_ANSWER_BYTES)).decode(errors="replace").strip()
            if 200 <= answer.status < 300:
                return answer.status
            retryable = answer.status in (408, 429) or answer.status >= 500
            said = f": {text[:200]}" if text else ""
            raise DeliveryError(f"{host} answered {answer.status}{said}", retryable=retryable)
    except DeliveryError:
        raise
    except TimeoutError:
        raise DeliveryError(f"{host} did not answer within {timeout_seconds:g} s", retryable=True) from None
    except aiohttp.ClientError as exc:
        # aiohttp's messages may repeat the URL: only the exception's type and the host are kept.
        raise DeliveryError(f"{host} could not be reached ({type(exc).__name__})", retryable=True) from None
