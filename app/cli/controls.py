"""Operator controls on a run or a step: queue QA, approve, mark critical, retry, pause, resume, cancel.

Each queues or records and returns; `tasksgodzilla protocol run` (or any worker) carries the work on.
In remote mode each is the API's action route (`remote`: its last path segment and body); the server
records its caller as who acted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, os_user, reports_errors, run_session
from app.cli.refs import find_protocol, find_step, parse_protocol, parse_step, run_label
from app.cli.remote import over_http, protocol_at, remote_of, step_at
from app.domain.records import ProtocolRun, StepRun
from app.domain.visible import check_visible_text
from app.services import controls, quality
from app.services.context import Services

StepAction = Callable[[Services, StepRun], Awaitable[StepRun]]
RunAction = Callable[[Services, ProtocolRun], Awaitable[ProtocolRun]]


def _on_step(
    step_ref: str,
    action: StepAction,
    done: str,
    remote: tuple[str, dict[str, Any] | None],
    *,
    by: str | None = None,
) -> None:
    """`done` may name `{who}`: the --by name (default the OS user) locally; over HTTP the server
    records the token's holder, so --by is refused there and `{who}` says so."""
    ref = parse_step(step_ref)
    settings = operator_settings()
    if (server := remote_of(settings)) is not None:
        if by is not None:
            raise click.UsageError(
                "--by is for commands on this machine's database: over HTTP the server records the "
                "holder of TASKSGODZILLA_API_TOKEN as who acted; drop --by"
            )
        done = done.format(who="this token's holder")

        async def act_remotely(api: ApiClient) -> str:
            project, run, step = await step_at(api, ref)
            name, body = remote
            step = StepRun.model_validate(await api.post(f"/steps/{step.id}/actions/{name}", body))
            return f"step {step.step_index:02d} of {run_label(project, run)} {done} (now {step.status})"

        click.echo(over_http(server, act_remotely))
        return

    done = done.format(who=by or os_user())

    async def act(session: Session) -> None:
        async with session.services.database.transaction() as conn:
            project, run, step = await find_step(conn, ref)
        step = await action(session.services, step)
        click.echo(f"step {step.step_index:02d} of {run_label(project, run)} {done} (now {step.status})")

    run_session(settings, act)


def _on_run(protocol_ref: str, action: RunAction, remote: str) -> None:
    ref = parse_protocol(protocol_ref)
    settings = operator_settings()
    if (server := remote_of(settings)) is not None:

        async def act_remotely(api: ApiClient) -> str:
            project, run = await protocol_at(api, ref)
            run = ProtocolRun.model_validate(await api.post(f"/protocols/{run.id}/actions/{remote}"))
            return f"{run_label(project, run)} is {run.status}"

        click.echo(over_http(server, act_remotely))
        return

    async def act(session: Session) -> None:
        async with session.services.database.transaction() as conn:
            project, run = await find_protocol(conn, ref)
        run = await action(session.services, run)
        click.echo(f"{run_label(project, run)} is {run.status}")

    run_session(settings, act)


@click.command("qa")
@click.argument("step_ref", metavar="STEP")
@reports_errors
def qa(step_ref: str) -> None:
    """Queue QA of STEP (a step waiting for it)."""
    _on_step(step_ref, lambda svc, step: controls.run_qa(svc, step.id), "queued for QA", ("run_qa", None))


@click.command("approve")
@click.argument("step_ref", metavar="STEP")
@click.option("--note", default="", help="Why it passes, kept with the approval.")
@click.option("--by", "by", help="Who approves [default: the current user].")
@reports_errors
def approve(step_ref: str, note: str, by: str | None) -> None:
    """Pass STEP by hand (waiting for QA, failed or blocked); its run moves on if nothing else blocks it."""
    check_visible_text(note, field="note", multiline=True)
    _on_step(
        step_ref,
        lambda svc, step: quality.approve_step(
            svc, step.id, by=by or os_user(), note=note, expected_version=step.version
        ),
        "approved by {who}",
        ("approve", {"note": note}),
        by=by,
    )


@click.command("critical")
@click.argument("step_ref", metavar="STEP")
@click.option("--off", is_flag=True, help="Unmark it: one QA opinion again (unless the policy asks for two).")
@click.option("--by", "by", help="Who marks it [default: the current user].")
@reports_errors
def critical(step_ref: str, off: bool, by: str | None) -> None:
    """Mark STEP critical: its QA takes a second opinion (another engine or model), and a disagreement
    blocks it for a person. Refused when no second QA choice differs from its first."""
    _on_step(
        step_ref,
        lambda svc, step: quality.mark_critical(
            svc, step.id, critical=not off, by=by or os_user(), expected_version=step.version
        ),
        f"{'no longer ' if off else ''}marked critical by {{who}}",
        ("mark_critical", {"critical": not off}),
        by=by,
    )


@click.command("retry")
@click.argument("step_ref", metavar="STEP")
@click.option("--note", default="", help="For the agent's next attempt (it then redoes the step).")
@reports_errors
def retry(step_ref: str, note: str) -> None:
    """Send a failed or blocked STEP back to pending and queue it (its run is unblocked).

    A step QA or CI rejected, or one given a note, is done again by its agent on top of its last
    commit, with the verdict and the note in its prompt.
    """
    check_visible_text(note, field="note", multiline=True)
    who = os_user()
    _on_step(
        step_ref,
        lambda svc, step: controls.retry_step(svc, step.id, expected_version=step.version, note=note, by=who),
        "queued again",
        ("retry", {"note": note}),
    )


@click.command("pause")
@click.argument("protocol_ref", metavar="PROTOCOL")
@reports_errors
def pause(protocol_ref: str) -> None:
    """Pause PROTOCOL after its current step."""
    _on_run(protocol_ref, lambda svc, run: controls.pause(svc, run.id, expected_version=run.version), "pause")


@click.command("resume")
@click.argument("protocol_ref", metavar="PROTOCOL")
@reports_errors
def resume(protocol_ref: str) -> None:
    """Carry on a paused or blocked PROTOCOL (queues its next job; follow it with `protocol run`)."""
    _on_run(
        protocol_ref, lambda svc, run: controls.resume(svc, run.id, expected_version=run.version), "resume"
    )


@click.command("cancel")
@click.argument("protocol_ref", metavar="PROTOCOL")
@reports_errors
def cancel(protocol_ref: str) -> None:
    """Cancel PROTOCOL and its unfinished steps, stopping the agent working on it."""
    _on_run(
        protocol_ref, lambda svc, run: controls.cancel(svc, run.id, expected_version=run.version), "cancel"
    )
