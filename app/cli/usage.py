"""`tasksgodzilla usage PROJECT`: what a project's agents used, per day, month, engine or model; and the
lines `protocol status` prints about a run's usage."""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, printable, reports_errors, run_session, table
from app.cli.refs import find_project, parse_project
from app.cli.remote import over_http, project_at, remote_of
from app.domain.totals import ProjectUsage, ProtocolUsage, Totals, UsageGroup, dollars
from app.errors import InvalidInputError
from app.services import usage as usage_service

HEADERS = ["runs", "tokens", "input", "cached", "output", "reasoning", "cost"]


def _cells(totals: Totals) -> list[str]:
    counts = (
        totals.runs,
        totals.tokens,
        totals.input_tokens,
        totals.cached_input_tokens,
        totals.output_tokens,
        totals.reasoning_tokens,
    )
    return [*map(str, counts), dollars(totals)]


def protocol_usage_lines(usage: ProtocolUsage) -> list[str]:
    """A run's usage: one row per stage that ran an agent, and the total."""
    rows = [[str(stage), *_cells(t)] for stage, t in usage.by_stage.items() if t.runs]
    return table(["stage", *HEADERS], [*rows, ["total", *_cells(usage.total)]])


def project_usage_lines(usage: ProjectUsage) -> list[str]:
    rows = [[printable(row.key), *_cells(row.totals)] for row in usage.rows]
    if not rows:
        return ["no finished agent run in this range"]
    return table([str(usage.group), *HEADERS], [*rows, ["total", *_cells(usage.total)]])


def _day(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInputError(
            f"--{name} must be a day as YYYY-MM-DD, not {text[:20]!r}", field=name
        ) from None


@click.command("usage")
@click.argument("project_ref", metavar="PROJECT")
@click.option(
    "--group",
    type=click.Choice([g.value for g in UsageGroup]),
    default=UsageGroup.DAY.value,
    show_default=True,
    help="Split by UTC day or month, by engine or by model.",
)
@click.option("--since", metavar="YYYY-MM-DD", help="First day counted (UTC).")
@click.option("--until", metavar="YYYY-MM-DD", help="Last day counted (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def usage(project_ref: str, group: str, since: str | None, until: str | None, as_json: bool) -> None:
    """Tokens and cost of PROJECT's agent runs (planning, execution, QA), split by GROUP. A run whose
    model has no price is counted as of unknown cost, never as free."""
    ref = parse_project(project_ref)
    first, last = _day("since", since), _day("until", until)

    async def load(session: Session) -> ProjectUsage:
        async with session.services.database.read() as conn:
            project = await find_project(conn, ref)
        return await usage_service.for_project(
            session.services, project.id, UsageGroup(group), since=first, until=last
        )

    async def load_remotely(api: ApiClient) -> ProjectUsage:
        project = await project_at(api, ref)
        query = {"group": group, "since": first, "until": last}
        return ProjectUsage.model_validate(await api.get(f"/projects/{project.id}/usage", **query))

    settings = operator_settings()
    remote = remote_of(settings)
    found = over_http(remote, load_remotely) if remote else run_session(settings, load)
    if as_json:
        click.echo(json.dumps(found.model_dump(mode="json"), indent=2))
        return
    for line in project_usage_lines(found):
        click.echo(line)
