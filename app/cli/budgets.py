"""`tasksgodzilla budget raise`: an operator lifts one budget of a project, a protocol run or a step."""

from __future__ import annotations

import getpass

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session
from app.cli.refs import find_project, find_protocol, find_step, parse_project, parse_protocol, parse_step
from app.cli.remote import over_http, project_at, protocol_at, remote_of, step_at
from app.domain.budgets import SCOPES
from app.errors import InvalidInputError
from app.services import budgets


@click.group("budget")
def budget() -> None:
    """Budgets: lift one when it stopped work that should go on."""


@budget.command("raise")
@click.argument("scope", type=click.Choice(sorted(SCOPES)))
@click.argument("amount", type=click.FloatRange(min=0, min_open=True, max=1e12))
@click.option("--project", "project_ref", metavar="PROJECT", help="For project, month, month_cost.")
@click.option("--protocol", "protocol_ref", metavar="PROTOCOL", help="For protocol, protocol_cost.")
@click.option("--step", "step_ref", metavar="STEP", help="For step.")
@click.option("--by", "by", help="Who raises it [default: the current user].")
@reports_errors
def raise_budget(
    scope: str,
    amount: float,
    project_ref: str | None,
    protocol_ref: str | None,
    step_ref: str | None,
    by: str | None,
) -> None:
    """Lift SCOPE's budget by AMOUNT (tokens; US dollars for project, protocol_cost, month_cost) for one
    project, protocol run or step; recorded as `budget.raised`. Then retry what it stopped."""
    given = [ref for ref in (project_ref, protocol_ref, step_ref) if ref is not None]
    if len(given) != 1:
        raise InvalidInputError("name exactly one of --project, --protocol, --step", field="project")
    who = by or _operator()
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def apply_remotely(api: ApiClient) -> str:
            if step_ref is not None:
                _, _, step = await step_at(api, parse_step(step_ref))
                where = f"/steps/{step.id}"
            elif protocol_ref is not None:
                _, run = await protocol_at(api, parse_protocol(protocol_ref))
                where = f"/protocols/{run.id}"
            else:
                assert project_ref is not None
                where = f"/projects/{(await project_at(api, parse_project(project_ref))).id}"
            # The server records its caller as who raised it (--by is for local mode).
            raised = await api.post(f"{where}/budget/raise", {"scope": scope, "amount": amount})
            month = f" for {raised['month']}" if raised.get("month") else ""
            return f"{scope} budget raised by {amount:g}{month}"

        click.echo(over_http(remote, apply_remotely))
        return

    async def apply(session: Session) -> str:
        svc = session.services
        async with svc.database.read() as conn:
            if step_ref is not None:
                _, _, step = await find_step(conn, parse_step(step_ref))
                ids = {"project_id": None, "step_run_id": step.id}
            elif protocol_ref is not None:
                _, run = await find_protocol(conn, parse_protocol(protocol_ref))
                ids = {"project_id": None, "protocol_run_id": run.id}
            else:
                assert project_ref is not None
                ids = {"project_id": (await find_project(conn, parse_project(project_ref))).id}
        project_id = ids.pop("project_id")
        raised = await budgets.raise_budget(svc, project_id, scope, amount, by=who, **ids)
        return f"{scope} budget raised by {amount:g} by {who}" + (
            f" for {raised['month']}" if raised["month"] else ""
        )

    click.echo(run_session(settings, apply))


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment nor the password database
        return "operator"
