"""Looking at a run: its status with its steps, and its events (optionally as they come)."""

from __future__ import annotations

import json
from typing import Any

import click

from app.api_client import ApiClient
from app.cli.common import (
    Session,
    operator_settings,
    printable,
    reports_errors,
    run_session,
    table,
    wants_worker,
)
from app.cli.common import worker_option as with_worker_option
from app.cli.progress import Console, Follower, read_new, read_run, tail
from app.cli.refs import find_protocol, parse_protocol, run_label
from app.cli.remote import over_http, protocol_at, remote_of, steps_of
from app.cli.remote_follow import tail_over_http
from app.cli.usage import protocol_usage_lines
from app.domain.events import EVENT_KINDS
from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.totals import ProtocolUsage
from app.errors import InvalidInputError
from app.services import usage as usage_service


def status_view(
    project: Project, run: ProtocolRun, steps: list[StepRun], usage: ProtocolUsage
) -> dict[str, Any]:
    """What `status --json` prints: the run, its label and project, its steps in order, its usage."""
    return {
        "ref": run_label(project, run),
        "project": project.name,
        "protocol": run.model_dump(mode="json"),
        "steps": [step.model_dump(mode="json") for step in steps],
        "usage": usage.model_dump(mode="json"),
    }


def status_lines(project: Project, run: ProtocolRun, steps: list[StepRun]) -> list[str]:
    """The run in a few lines, then one row per step (its usage follows, from protocol_usage_lines)."""
    lines = [f"{run_label(project, run)}  {run.title}  [{run.status}]"]
    facts = [f"id {run.id}", f"name {run.name}"]
    if run.branch_name:
        facts.append(f"branch {run.branch_name}")
    if run.head_sha:
        facts.append(f"head {run.head_sha[:10]}")
    lines.append("  ".join(facts))
    if run.last_error:
        lines.append(f"last error: {printable(run.last_error.splitlines()[0][:300])}")
    if not steps:
        return [*lines, "no steps yet (they come from the plan)"]
    rows = [
        [
            str(s.id),
            f"{s.step_index:02d}",
            str(s.status),
            str(s.attempts),
            (s.commit_sha or "-")[:10],
            s.qa_verdict or "-",
            s.name,
        ]
        for s in steps
    ]
    return [*lines, "", *table(["id", "step", "status", "attempts", "commit", "qa", "name"], rows)]


@click.command("status")
@click.argument("protocol_ref", metavar="PROTOCOL")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def status(protocol_ref: str, as_json: bool) -> None:
    """Show PROTOCOL, its steps (status, attempts, commit, QA verdict), its tokens and cost per stage."""
    ref = parse_protocol(protocol_ref)
    settings = operator_settings()

    async def load_remotely(api: ApiClient) -> tuple[Project, ProtocolRun, list[StepRun], ProtocolUsage]:
        project, run = await protocol_at(api, ref)
        usage = ProtocolUsage.model_validate(await api.get(f"/protocols/{run.id}/usage"))
        return project, run, await steps_of(api, run.id), usage

    async def load(session: Session) -> tuple[Project, ProtocolRun, list[StepRun], ProtocolUsage]:
        async with session.services.database.transaction() as conn:
            project, run = await find_protocol(conn, ref)
        run, steps = await read_run(session.services, run.id)
        return project, run, steps, await usage_service.for_protocol(session.services, run.id)

    remote = remote_of(settings)
    project, run, steps, usage = over_http(remote, load_remotely) if remote else run_session(settings, load)
    if as_json:
        click.echo(json.dumps(status_view(project, run, steps, usage), indent=2))
        return
    for line in [*status_lines(project, run, steps), "", *protocol_usage_lines(usage)]:
        click.echo(line)


@click.command("events")
@click.argument("protocol_ref", metavar="PROTOCOL")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this event type (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines).")
@with_worker_option
@reports_errors
def events(
    protocol_ref: str, follow: bool, types: tuple[str, ...], as_json: bool, worker: bool | None
) -> None:
    """Print the events of PROTOCOL in order: time, type, message."""
    ref = parse_protocol(protocol_ref)
    unknown = sorted(set(types) - set(EVENT_KINDS))
    if unknown:
        raise InvalidInputError(f"unknown event type {unknown[0]!r} (known: {', '.join(EVENT_KINDS)})")
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def show_remotely(api: ApiClient) -> None:
            _, run = await protocol_at(api, ref)
            follower = Follower(Console(), as_json=as_json, types=frozenset(types))
            await tail_over_http(api, run.id, follower, follow=follow)

        over_http(remote, show_remotely)
        return

    async def show(session: Session) -> None:
        async with session.services.database.transaction() as conn:
            _, run = await find_protocol(conn, ref)
        follower = Follower(Console(), as_json=as_json, types=frozenset(types))
        follower.show(
            await read_new(session.services, follower, {"protocol_run_id": run.id}, last=not follow)
        )
        if follow:
            await tail(session, run.id, follower)

    run_session(settings, show, worker=follow and wants_worker(settings, worker))
