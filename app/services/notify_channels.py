"""A project's notification channels: add (checked, its URL and secret encrypted), list, delete, test.

A webhook or Slack URL is kept encrypted like the project's other secrets (app/store/secrets.py): a
Slack URL is its own credential. Only its host is ever shown. A JSON webhook signs every body with
its channel's secret (given, or made here and shown once, at creation).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from app.domain.addresses import host_reach
from app.domain.notifications import KINDS, ChannelType, unknown_kinds
from app.errors import InvalidInputError, NotFoundError
from app.notify.http import refusal
from app.services.context import Services
from app.services.events import record
from app.store import events, projects
from app.store import notifications as store
from app.store.secrets import secret_box

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")
URL_MAX = 2048
MAX_RECIPIENTS = 20


@dataclass(frozen=True)
class ChannelView:
    """A channel as shown: never its URL or secret (`secret` only once, when the service made it)."""

    id: int
    project_id: int
    name: str
    channel_type: str
    kinds: list[str]
    host: str | None
    recipients: list[str] | None
    created_at: datetime
    secret: str | None = None


def view(channel: store.Channel, secret: str | None = None) -> ChannelView:
    return ChannelView(
        id=channel.id,
        project_id=channel.project_id,
        name=channel.name,
        channel_type=channel.channel_type,
        kinds=channel.kinds,
        host=channel.host,
        recipients=channel.recipients,
        created_at=channel.created_at,
        secret=secret,
    )


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL's host when a notification may be POSTed to it (https; http and private hosts only
    when allowed); InvalidInputError naming `url` otherwise. Never repeats the URL."""
    if (
        not isinstance(url, str)
        or not url
        or len(url) > URL_MAX
        or any(c.isspace() or ord(c) < 32 for c in url)
    ):
        raise InvalidInputError(f"url must be an https URL of at most {URL_MAX} characters", field="url")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInputError("url must be an https URL with a host", field="url")
    if parts.scheme == "http" and not allow_private:
        raise InvalidInputError(
            "url must be https (http only with TASKSGODZILLA_NOTIFY_ALLOW_PRIVATE_URLS: a local receiver)",
            field="url",
        )
    why = refusal(host, host_reach(host), allow_private=allow_private)
    if why is not None:
        raise InvalidInputError(f"url host {why}", field="url")
    return host


def _check_kinds(kinds: list[str] | None) -> list[str]:
    if kinds is None:
        return list(KINDS)
    unknown = unknown_kinds(kinds)
    if unknown or not kinds:
        raise InvalidInputError(
            f"kinds must be some of {', '.join(KINDS)} (unknown: {', '.join(unknown) or 'none given'})",
            field="kinds",
        )
    return list(dict.fromkeys(kinds))


def _check_recipients(recipients: list[str] | None) -> list[str]:
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise InvalidInputError(
            f"recipients must list 1 to {MAX_RECIPIENTS} e-mail addresses", field="recipients"
        )
    bad = [r for r in recipients if not isinstance(r, str) or len(r) > 254 or not EMAIL.fullmatch(r)]
    if bad:
        raise InvalidInputError(
            "recipients must be plain e-mail addresses (name@example.com)", field="recipients"
        )
    return list(dict.fromkeys(recipients))


def email_ready(svc: Services) -> None:
    """A refusal naming the missing setting when e-mail cannot be sent."""
    for name in ("smtp_host", "smtp_from"):
        if not getattr(svc.settings, name):
            raise InvalidInputError(
                f"e-mail channels need TASKSGODZILLA_{name.upper()} set on the service", field="channel_type"
            )


async def add_channel(
    svc: Services,
    project_id: int,
    *,
    name: str,
    channel_type: str,
    kinds: list[str] | None = None,
    url: str | None = None,
    secret: str | None = None,
    recipients: list[str] | None = None,
) -> ChannelView:
    """Add a channel to the project; a webhook's made secret comes back once (in `secret`)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInputError("name must be 1-64 letters, digits, '.', '_' or '-'", field="name")
    try:
        kind = ChannelType(channel_type)
    except ValueError:
        raise InvalidInputError(
            f"channel_type must be one of {', '.join(ChannelType)}", field="channel_type"
        ) from None
    values: dict[str, Any] = {
        "project_id": project_id,
        "name": name,
        "channel_type": str(kind),
        "kinds": _check_kinds(kinds),
    }
    made: str | None = None
    box = secret_box(svc.settings)
    if kind is ChannelType.EMAIL:
        if url is not None or secret is not None:
            raise InvalidInputError("an e-mail channel takes recipients, not a url or secret", field="url")
        email_ready(svc)
        values["recipients"] = _check_recipients(recipients)
    else:
        if recipients is not None:
            raise InvalidInputError("recipients are for e-mail channels only", field="recipients")
        if url is None:
            raise InvalidInputError(f"a {kind} channel needs its url", field="url")
        values["host"] = check_url(url, allow_private=svc.settings.notify_allow_private_urls)
        values["url_ciphertext"] = box.encrypt(url)
        if kind is ChannelType.WEBHOOK:
            if secret is not None and not (16 <= len(secret) <= 256):
                raise InvalidInputError("secret must be 16 to 256 characters", field="secret")
            made = secret if secret is not None else secrets.token_urlsafe(32)
            values["secret_ciphertext"] = box.encrypt(made)
        elif secret is not None:
            raise InvalidInputError("a Slack webhook takes no secret (its URL is the secret)", field="secret")
    async with svc.database.transaction() as conn:
        await projects.get(conn, project_id)
        if await store.channel_named(conn, project_id, name) is not None:
            raise InvalidInputError(f"the project has a channel named {name} already", field="name")
        channel = await store.add_channel(conn, **values)
        await store.ensure_cursor(conn, await events.horizon(conn))
        await record(
            conn,
            project_id,
            "notification.channel_added",
            f"notification channel {name} ({kind}) added for {', '.join(channel.kinds)}",
            channel=name,
            channel_type=str(kind),
            kinds=channel.kinds,
            host=channel.host,
        )
    # Shown once, and only when the service made it: a secret the caller gave it knows already.
    return view(channel, made if secret is None else None)


async def list_channels(svc: Services, project_id: int) -> list[ChannelView]:
    async with svc.database.read() as conn:
        await projects.get(conn, project_id)
        return [view(c) for c in await store.channels_of(conn, [project_id])]


async def delete_channel(svc: Services, project_id: int, channel_id: int) -> None:
    async with svc.database.transaction() as conn:
        channel = await store.channel(conn, channel_id)
        if channel is None or channel.project_id != project_id:
            raise NotFoundError(f"notification channel {channel_id} not found", field="channel")
        await store.delete_channel(conn, project_id, channel_id)
        await record(
            conn, project_id, "notification.channel_deleted", f"notification channel {channel.name} deleted",
            channel=channel.name,
        )  # fmt: skip


async def channel_of(svc: Services, project_id: int, channel_id: int) -> store.Channel:
    async with svc.database.read() as conn:
        channel = await store.channel(conn, channel_id)
    if channel is None or channel.project_id != project_id:
        raise NotFoundError(f"notification channel {channel_id} not found", field="channel")
    return channel
