"""`tasksgodzilla protocol new|plan|run` over HTTP (remote mode): the same decisions (app/cli/run_states.py)
and lines as local mode, the work done by the service's workers."""

from __future__ import annotations

from app.api_client import ApiClient
from app.cli.progress import Console, Follower
from app.cli.refs import ProjectRef, ProtocolRef, run_label
from app.cli.remote import project_at, protocol_at, steps_of
from app.cli.remote_follow import events_after, follow_run_over_http
from app.cli.run_states import (
    HAS_PLAN,
    RESTING,
    count,
    move_done,
    next_move,
    stopped_message,
    waiting_step,
)
from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.errors import ConflictError


async def create(api: ApiClient, ref: ProjectRef, title: str, description: str, start: bool) -> str:
    project = await project_at(api, ref)
    body = {"title": title, "description": description, "start": start}
    run = ProtocolRun.model_validate(await api.post(f"/projects/{project.id}/protocols", body))
    queued = "; planning queued" if start else ""
    return f"created {run_label(project, run)} ({run.name}, id {run.id}){queued}"


async def _open(
    api: ApiClient, ref: ProtocolRef, *, history: bool
) -> tuple[str, ProtocolRun, Follower, str | None]:
    """The run, its label, a follower, and the events cursor to follow from: its history printed first
    (`history`), else passed over (but noting the agents already running)."""
    project, run = await protocol_at(api, ref)
    follower = Follower(Console())
    past, cursor = await events_after(api, f"/protocols/{run.id}/events", None)
    (follower.show if history else follower.skip)(past)
    return run_label(project, run), run, follower, cursor


async def _planned(run: ProtocolRun, _: list[StepRun]) -> bool:
    return run.status is not P.PLANNING


async def plan(api: ApiClient, ref: ProtocolRef) -> None:
    label, run, follower, cursor = await _open(api, ref, history=False)
    if run.status in HAS_PLAN:
        follower.console.line(f"{label} is planned already ({run.status})")
        return
    if run.status is not P.PLANNING:
        await api.post(f"/protocols/{run.id}/actions/start")
        follower.console.line(f"planning {label}")
    run, steps = await follow_run_over_http(api, run.id, follower, cursor, _planned)
    if run.status not in HAS_PLAN:
        raise ConflictError(stopped_message(label, run, steps, auto_qa=True), status=str(run.status))
    follower.console.line(f"{label} planned: {count(steps)}")


async def run(
    api: ApiClient, ref: ProtocolRef, *, follow: bool, auto_qa: bool, qa_on_ci: bool = False
) -> None:
    label, found, follower, cursor = await _open(api, ref, history=True)
    move = next_move(label, found, await steps_of(api, found.id))
    if move is not None:
        await api.post(f"/protocols/{found.id}/actions/{move}")
    follower.console.line(f"{label}: {move_done(move, found)}")
    if not follow:
        return

    async def resting(current: ProtocolRun, steps: list[StepRun]) -> bool:
        # Unlike local mode, a QA queued by hand on a step waiting for it is not seen: the run rests.
        waiting = waiting_step(steps, auto_qa=auto_qa) if current.status is P.RUNNING else None
        return current.status in RESTING or waiting is not None

    current, steps = await follow_run_over_http(api, found.id, follower, cursor, resting)
    if current.status is not P.COMPLETED:
        raise ConflictError(
            stopped_message(label, current, steps, auto_qa=auto_qa, qa_on_ci=qa_on_ci),
            status=str(current.status),
        )
    head = f" at {current.head_sha[:10]}" if current.head_sha else ""
    follower.console.line(f"{label} completed: {count(steps)} on branch {current.branch_name}{head}")
