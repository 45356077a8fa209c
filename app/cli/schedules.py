"""`tasksgodzilla schedule add|list|delete`: a project's cron schedules, each due time one run."""

from __future__ import annotations

from typing import Any

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session
from app.cli.refs import find_project, parse_project
from app.cli.remote import over_http, project_at, remote_of
from app.domain.schedules import Schedule
from app.services import schedules


@click.group("schedule")
def schedule() -> None:
    """Cron schedules: each due time (UTC) creates and starts a run from the schedule's template."""


def _line(found: Schedule) -> str:
    state = "enabled" if found.enabled else "disabled"
    return f"{found.id}\t{found.cron}\t{state}\t{found.title}"


def _over(project_ref: str, remotely: Any, locally: Any) -> Any:
    """Run `remotely(api, project_id)` on a remote server, else `locally(svc, project_id)`."""
    ref = parse_project(project_ref)
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def call(api: ApiClient) -> Any:
            return await remotely(api, (await project_at(api, ref)).id)

        return over_http(remote, call)

    async def local(session: Session) -> Any:
        async with session.services.database.read() as conn:
            found = await find_project(conn, ref)
        return await locally(session.services, found.id)

    return run_session(settings, local)


@schedule.command("add")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("cron")
@click.option("--title", required=True, help="The title of each run it creates.")
@click.option("--description", default="", help="The description of each run it creates.")
@click.option("--disabled", is_flag=True, help="Add it switched off.")
@reports_errors
def add(project_ref: str, cron: str, title: str, description: str, disabled: bool) -> None:
    """Add a schedule to PROJECT: CRON is five fields, UTC (`0 6 * * 1`: Mondays at 06:00)."""
    fields: dict[str, Any] = {
        "cron": cron,
        "title": title,
        "description": description,
        "enabled": not disabled,
    }

    async def remotely(api: ApiClient, project_id: int) -> Schedule:
        return Schedule.model_validate(await api.post(f"/projects/{project_id}/schedules", fields))

    async def locally(svc: Any, project_id: int) -> Schedule:
        return await schedules.add_schedule(svc, project_id, **fields)

    click.echo(f"schedule added: {_line(_over(project_ref, remotely, locally))}")


@schedule.command("list")
@click.argument("project_ref", metavar="PROJECT")
@reports_errors
def list_(project_ref: str) -> None:
    """PROJECT's schedules: id, cron, state, title."""

    async def remotely(api: ApiClient, project_id: int) -> list[Schedule]:
        page = await api.get(f"/projects/{project_id}/schedules")
        return [Schedule.model_validate(item) for item in page["items"]]

    async def locally(svc: Any, project_id: int) -> list[Schedule]:
        return await schedules.list_schedules(svc, project_id)

    found = _over(project_ref, remotely, locally)
    for item in found:
        click.echo(_line(item))
    if not found:
        click.echo("no schedules")


@schedule.command("delete")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("schedule_id", type=click.IntRange(min=1))
@reports_errors
def delete(project_ref: str, schedule_id: int) -> None:
    """Delete PROJECT's schedule SCHEDULE_ID (the runs it created stay)."""

    async def remotely(api: ApiClient, project_id: int) -> None:
        await api.delete(f"/projects/{project_id}/schedules/{schedule_id}")

    async def locally(svc: Any, project_id: int) -> None:
        await schedules.delete_schedule(svc, project_id, schedule_id)

    _over(project_ref, remotely, locally)
    click.echo(f"schedule {schedule_id} deleted")
