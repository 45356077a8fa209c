"""Operator controls on a run or a step: queue QA, approve, mark critical, retry, pause, resume, cancel.

Each queues or records and returns; `tasksgodzilla protocol run` (or any worker) carries the work on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import click

from app.cli.common import Session, operator_settings, os_user, reports_errors, run_session
from app.cli.refs import find_protocol, find_step, parse_protocol, parse_step, run_label
from app.domain.records import ProtocolRun, StepRun
from app.domain.visible import check_visible_text
from app.services import controls, quality
from app.services.context import Services

StepAction = Callable[[Services, StepRun], Awaitable[StepRun]]
RunAction = Callable[[Services, ProtocolRun], Awaitable[ProtocolRun]]


def _on_step(step_ref: str, action: StepAction, done: str) -> None:
    ref = parse_step(step_ref)

    async def act(session: Session) -> None:
        async with session.services.database.transaction() as conn:
            project, run, step = await find_step(conn, ref)
        step = await action(session.services, step)
        click.echo(f"step {step.step_index:02d} of {run_label(project, run)} {done} (now {step.status})")

    run_session(operator_settings(), act)


def _on_run(protocol_ref: str, action: RunAction) -> None:
    ref = parse_protocol(protocol_ref)

    async def act(session: Session) -> None:
        async with session.services.database.transaction() as conn:
            project, run = await find_protocol(conn, ref)
        run = await action(session.services, run)
        click.echo(f"{run_label(project, run)} is {run.status}")

    run_session(operator_settings(), act)


@click.command("qa")
@click.argument("step_ref", metavar="STEP")
@reports_errors
def qa(step_ref: str) -> None:
    """Queue QA of STEP (a step waiting for it)."""
    _on_step(step_ref, lambda svc, step: controls.run_qa(svc, step.id), "queued for QA")


@click.command("approve")
@click.argument("step_ref", metavar="STEP")
@click.option("--note", default="", help="Why it passes, kept with the approval.")
@click.option("--by", "by", help="Who approves [default: the current user].")
@reports_errors
def approve(step_ref: str, note: str, by: str | None) -> None:
    """Pass STEP by hand (waiting for QA, failed or blocked); its run moves on if nothing else blocks it."""
    check_visible_text(note, field="note", multiline=True)
    who = by or os_user()
    _on_step(
        step_ref,
        lambda svc, step: quality.approve_step(
            svc, step.id, by=who, note=note, expected_version=step.version
        ),
        f"approved by {who}",
    )


@click.command("critical")
@click.argument("step_ref", metavar="STEP")
@click.option("--off", is_flag=True, help="Unmark it: one QA opinion again (unless the policy asks for two).")
@click.option("--by", "by", help="Who marks it [default: the current user].")
@reports_errors
def critical(step_ref: str, off: bool, by: str | None) -> None:
    """Mark STEP critical: its QA takes a second opinion (another engine or model), and a disagreement
    blocks it for a person. Refused when no second QA choice differs from its first."""
    who = by or os_user()
    _on_step(
        step_ref,
        lambda svc, step: quality.mark_critical(
            svc, step.id, critical=not off, by=who, expected_version=step.version
        ),
        f"{'no longer ' if off else ''}marked critical by {who}",
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
    )


@click.command("pause")
@click.argument("protocol_ref", metavar="PROTOCOL")
@reports_errors
def pause(protocol_ref: str) -> None:
    """Pause PROTOCOL after its current step."""
    _on_run(protocol_ref, lambda svc, run: controls.pause(svc, run.id, expected_version=run.version))


@click.command("resume")
@click.argument("protocol_ref", metavar="PROTOCOL")
@reports_errors
def resume(protocol_ref: str) -> None:
    """Carry on a paused or blocked PROTOCOL (queues its next job; follow it with `protocol run`)."""
    _on_run(protocol_ref, lambda svc, run: controls.resume(svc, run.id, expected_version=run.version))


@click.command("cancel")
@click.argument("protocol_ref", metavar="PROTOCOL")
@reports_errors
def cancel(protocol_ref: str) -> None:
    """Cancel PROTOCOL and its unfinished steps, stopping the agent working on it."""
    _on_run(protocol_ref, lambda svc, run: controls.cancel(svc, run.id, expected_version=run.version))
