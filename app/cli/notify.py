"""`tasksgodzilla notify add|list|delete|test`: a project's notification channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session
from app.cli.refs import find_project, parse_project
from app.cli.remote import over_http, project_at, remote_of
from app.domain.notifications import KINDS, ChannelType
from app.services import notify_channels, notify_delivery


@click.group("notify")
def notify() -> None:
    """Notification channels: who is told when a person is needed (blocked runs, budget stops, a PR
    ready for review, finished runs...), by JSON webhook, Slack webhook or e-mail."""


def _run(
    project_ref: str,
    local: Callable[[Session, int], Awaitable[str]],
    remote: Callable[[ApiClient, int], Awaitable[str]],
) -> None:
    settings = operator_settings()
    if (server := remote_of(settings)) is not None:

        async def over(api: ApiClient) -> str:
            return await remote(api, (await project_at(api, parse_project(project_ref))).id)

        click.echo(over_http(server, over))
        return

    async def here(session: Session) -> str:
        async with session.services.database.read() as conn:
            project = await find_project(conn, parse_project(project_ref))
        return await local(session, project.id)

    click.echo(run_session(settings, here))


def _line(channel: dict[str, Any]) -> str:
    where = channel["host"] or ", ".join(channel["recipients"] or [])
    fields = (channel["id"], channel["name"], channel["channel_type"], where, ",".join(channel["kinds"]))
    return "\t".join(str(f) for f in fields)


@notify.command("add")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("name")
@click.option("--type", "channel_type", type=click.Choice([str(c) for c in ChannelType]), required=True)
@click.option(
    "--url", envvar="TASKSGODZILLA_NOTIFY_URL", help="webhook, slack: where to POST (or the variable)."
)
@click.option(
    "--secret", envvar="TASKSGODZILLA_NOTIFY_SECRET", help="webhook: signing key [default: made, shown once]."
)
@click.option("--recipient", "recipients", multiple=True, help="email: an address (repeat for more).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(list(KINDS)), help="[default: every kind]")
@reports_errors
def add(
    project_ref: str,
    name: str,
    channel_type: str,
    url: str | None,
    secret: str | None,
    recipients: tuple[str, ...],
    kinds: tuple[str, ...],
) -> None:
    """Add channel NAME to PROJECT, told of each --kind (every kind when none is given)."""
    body: dict[str, Any] = {"name": name, "channel_type": channel_type, "kinds": list(kinds) or None}
    body |= {"url": url, "secret": secret, "recipients": list(recipients) or None}
    body = {key: value for key, value in body.items() if value is not None}

    def said(channel: dict[str, Any]) -> str:
        made = channel.get("secret")
        shown = f"\nsigning secret (shown once): {made}" if made else ""
        return f"added {_line(channel)}{shown}"

    async def local(session: Session, project_id: int) -> str:
        return said(asdict(await notify_channels.add_channel(session.services, project_id, **body)))

    async def remote(api: ApiClient, project_id: int) -> str:
        return said(await api.post(f"/projects/{project_id}/notifications", body))

    _run(project_ref, local, remote)


@notify.command("list")
@click.argument("project_ref", metavar="PROJECT")
@reports_errors
def list_channels(project_ref: str) -> None:
    """PROJECT's channels: id, name, type, host or recipients, kinds."""

    async def local(session: Session, project_id: int) -> str:
        found = await notify_channels.list_channels(session.services, project_id)
        return "\n".join(_line(asdict(c)) for c in found) or "no channels"

    async def remote(api: ApiClient, project_id: int) -> str:
        found = await api.get(f"/projects/{project_id}/notifications")
        return "\n".join(_line(c) for c in found) or "no channels"

    _run(project_ref, local, remote)


@notify.command("delete")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("channel_id", type=click.IntRange(min=1))
@reports_errors
def delete(project_ref: str, channel_id: int) -> None:
    """Delete PROJECT's channel CHANNEL_ID."""

    async def local(session: Session, project_id: int) -> str:
        await notify_channels.delete_channel(session.services, project_id, channel_id)
        return f"deleted channel {channel_id}"

    async def remote(api: ApiClient, project_id: int) -> str:
        await api.delete(f"/projects/{project_id}/notifications/{channel_id}")
        return f"deleted channel {channel_id}"

    _run(project_ref, local, remote)


@notify.command("test")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("channel_id", type=click.IntRange(min=1))
@reports_errors
def test(project_ref: str, channel_id: int) -> None:
    """Send a test message on PROJECT's channel CHANNEL_ID now; exit 1 when it did not arrive."""

    async def local(session: Session, project_id: int) -> str:
        error = await notify_delivery.send_test(session.services, project_id, channel_id)
        return _tested(error)

    async def remote(api: ApiClient, project_id: int) -> str:
        answer = await api.post(f"/projects/{project_id}/notifications/{channel_id}/test")
        return _tested(answer["error"] if not answer["delivered"] else None)

    _run(project_ref, local, remote)


def _tested(error: str | None) -> str:
    if error is not None:
        raise click.ClickException(f"not delivered: {error}")
    return "delivered"
