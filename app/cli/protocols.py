"""`tasksgodzilla protocol …`: ask for work, plan it, run it to a resting state, and act on it.

Exit codes of the commands that wait: 0 when the run got where it was asked to go (`run`: completed;
`plan`: planned); 75 (the error table's ConflictError, "act, then try again") when it came to rest
short of that (blocked, paused, failed, cancelled, or a step waiting for a person); the line on
stderr says which, and what to do. Any other code is an error of the command itself.
"""

from __future__ import annotations

import functools

import click

from app.cli import protocols_remote
from app.cli.common import Session, operator_settings, reports_errors, run_session, wants_worker
from app.cli.common import worker_option as with_worker_option
from app.cli.controls import approve, cancel, critical, pause, qa, resume, retry
from app.cli.progress import Console, Follower, follow_protocol, read_new, read_run
from app.cli.refs import ProtocolRef, find_project, find_protocol, parse_project, parse_protocol, run_label
from app.cli.remote import over_http, remote_of
from app.cli.run_states import (
    HAS_PLAN,
    RESTING,
    RESUME,
    START,
    count,
    move_done,
    next_move,
    stopped_message,
    waiting_step,
)
from app.cli.views import events, status
from app.domain.naming import check_task_title
from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.visible import check_visible_text
from app.domain.workflow import quality_work
from app.errors import ConflictError
from app.services import controls as control_service
from app.services import planning
from app.services.context import Services


@click.group("protocol")
def protocol() -> None:
    """Protocol runs: a task planned into steps, each executed, checked and committed by agents.

    PROTOCOL is a run id or PROJECT/NNNN (demo/0001); STEP is a step id or PROJECT/NNNN/NN.
    """


for _command in (qa, approve, critical, retry, pause, resume, cancel, status, events):
    protocol.add_command(_command)


@protocol.command("new")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("title")
@click.option("--description", default="", help="What the task is about, for the planning agent.")
@click.option("--start/--no-start", default=False, show_default=True, help="Queue its planning now.")
@reports_errors
def new(project_ref: str, title: str, description: str, start: bool) -> None:
    """Create a protocol run titled TITLE in PROJECT (a name or id)."""
    ref = parse_project(project_ref)
    check_task_title(title)
    check_visible_text(description, field="description", multiline=True)
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:
        click.echo(
            over_http(remote, lambda api: protocols_remote.create(api, ref, title, description, start))
        )
        return

    async def create(session: Session) -> None:
        svc = session.services
        async with svc.database.transaction() as conn:
            project = await find_project(conn, ref)
        run = await planning.create_protocol(svc, project.id, title=title, description=description)
        if start:
            run = await planning.start_protocol(svc, run.id, expected_version=run.version)
        queued = "; planning queued" if start else ""
        click.echo(f"created {run_label(project, run)} ({run.name}, id {run.id}){queued}")

    run_session(settings, create)


@protocol.command("plan")
@click.argument("protocol_ref", metavar="PROTOCOL")
@with_worker_option
@reports_errors
def plan(protocol_ref: str, worker: bool | None) -> None:
    """Plan PROTOCOL (pending, or blocked: re-plan) and follow until the plan is in.

    A planned run goes on to run its steps on whichever worker takes them.
    """
    ref = parse_protocol(protocol_ref)
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:
        over_http(remote, lambda api: protocols_remote.plan(api, ref))
        return

    async def go(session: Session) -> None:
        label, run, follower = await _open(session.services, ref, history=False)
        if run.status in HAS_PLAN:
            follower.console.line(f"{label} is planned already ({run.status})")
            return
        if run.status is not P.PLANNING:
            run = await planning.start_protocol(session.services, run.id, expected_version=run.version)
            follower.console.line(f"planning {label}")
        run, steps = await follow_protocol(session, run.id, follower, _planned)
        if run.status not in HAS_PLAN:
            raise ConflictError(stopped_message(label, run, steps, auto_qa=True), status=str(run.status))
        follower.console.line(f"{label} planned: {count(steps)}")

    run_session(settings, go, worker=wants_worker(settings, worker))


@protocol.command("run")
@click.argument("protocol_ref", metavar="PROTOCOL")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Follow until the run rests.")
@with_worker_option
@reports_errors
def run_protocol(protocol_ref: str, follow: bool, worker: bool | None) -> None:
    """Start or resume PROTOCOL and follow it until it rests, printing its events.

    Exits 0 when the run completed; 75 when it rests short of that (blocked, paused, failed,
    cancelled, or a step waiting for a person).
    """
    ref = parse_protocol(protocol_ref)
    settings = operator_settings()
    auto_qa = settings.auto_qa_after_exec
    qa_on_ci = settings.auto_qa_on_ci
    if (remote := remote_of(settings)) is not None:
        over_http(
            remote,
            lambda api: protocols_remote.run(api, ref, follow=follow, auto_qa=auto_qa, qa_on_ci=qa_on_ci),
        )
        return

    async def go(session: Session) -> None:
        label, run, follower = await _open(session.services, ref, history=True)
        _, steps = await read_run(session.services, run.id)
        action = await set_going(session.services, label, run, steps)
        follower.console.line(f"{label}: {action}")
        if not follow:
            return
        resting = functools.partial(is_resting, session.services, auto_qa=auto_qa)
        run, steps = await follow_protocol(session, run.id, follower, resting)
        if run.status is not P.COMPLETED:
            said = stopped_message(label, run, steps, auto_qa=auto_qa, qa_on_ci=qa_on_ci)
            raise ConflictError(said, status=str(run.status))
        head = f" at {run.head_sha[:10]}" if run.head_sha else ""
        follower.console.line(f"{label} completed: {count(steps)} on branch {run.branch_name}{head}")

    run_session(settings, go, worker=follow and wants_worker(settings, worker))


async def _open(svc: Services, ref: ProtocolRef, *, history: bool) -> tuple[str, ProtocolRun, Follower]:
    """The run, its label, and a follower past its history: printed first (`history`), else passed
    over (but noting the agents already running)."""
    async with svc.database.transaction() as conn:
        project, run = await find_protocol(conn, ref)
    follower = Follower(Console())
    past = await read_new(svc, follower, {"protocol_run_id": run.id})
    (follower.show if history else follower.skip)(past)
    return run_label(project, run), run, follower


async def set_going(svc: Services, label: str, run: ProtocolRun, steps: list[StepRun]) -> str:
    """Start, resume or just follow the run, by its status; what was done, in a few words."""
    move = next_move(label, run, steps)
    if move == START:
        await planning.start_protocol(svc, run.id, expected_version=run.version)
    elif move == RESUME:
        await control_service.resume(svc, run.id, expected_version=run.version)
    return move_done(move, run)


async def _planned(run: ProtocolRun, _: list[StepRun]) -> bool:
    return run.status is not P.PLANNING


async def is_resting(svc: Services, run: ProtocolRun, steps: list[StepRun], *, auto_qa: bool) -> bool:
    """Nothing will happen to the run without a person: a resting status, or a step waiting."""
    if run.status in RESTING:
        return True
    step = waiting_step(steps, auto_qa=auto_qa) if run.status is P.RUNNING else None
    if step is None:
        return False
    if step.status is S.NEEDS_QA:
        # Someone queued its QA by hand (`protocol qa`): that job is what we wait for.
        lock = quality_work(step).queueing_lock
        return lock not in await svc.queue.pending_locks([lock])
    return True
