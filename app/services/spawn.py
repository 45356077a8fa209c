"""Runs that no person asked for by hand: made from an issue, a schedule or a trigger, and started.

One transaction holds the run, its `protocol.created` event and its start (planning queued), so a
source that records what it created in the same transaction never creates twice nor loses one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.intake import issue_body
from app.domain.naming import check_task_title, slugify
from app.domain.records import ProjectStatus, ProtocolRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.workflow import plan_work
from app.errors import InvalidInputError
from app.services.context import Services
from app.services.events import record
from app.store import jobs, projects, protocols
from app.store.transitions import move_protocol


def run_title(title: str, fallback: str) -> str:
    """`title` when it is a valid task title, else `fallback` (an issue titled like a path still runs)."""
    try:
        return check_task_title(title)
    except InvalidInputError:
        return fallback


async def spawn_run(
    conn: AsyncConnection,
    svc: Services,
    project_id: int,
    *,
    title: str,
    description: str,
    source: str,
    **origin: Any,
) -> ProtocolRun:
    """Create a run from `source` (intake, schedule, trigger) and start it when the project is ready
    (else it waits, pending, for an operator's start)."""
    project = await projects.get(conn, project_id)
    title = run_title(title, f"{source} run")
    run = await protocols.create(
        conn, project_id, title=title, slug=slugify(title), description=issue_body(description)
    )
    await record(
        conn,
        project_id,
        "protocol.created",
        f"protocol {run.name} created by {source}",
        run=run,
        number=run.number,
        name=run.name,
        source=source,
        **origin,
    )
    if project.status is ProjectStatus.READY:
        run = await move_protocol(
            conn, run.id, P.PLANNING, expected_version=run.version, reason=f"started by {source}"
        )
        await jobs.defer(conn, plan_work(run.id))
    return run
