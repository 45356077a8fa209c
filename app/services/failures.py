"""Events for a job that failed: one that will run again, and one that gave up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import ProtocolRun, StepRun
from app.services.context import Services
from app.services.events import record
from app.store import projects, protocols, steps


async def _scope(
    conn: AsyncConnection, subject: tuple[str, int]
) -> tuple[int, ProtocolRun | None, StepRun | None]:
    """The project, run and step a job's subject belongs to."""
    kind, entity_id = subject
    if kind == "project":
        return (await projects.get(conn, entity_id)).id, None, None
    if kind == "protocol":
        run = await protocols.get(conn, entity_id)
        return run.project_id, run, None
    step = await steps.get(conn, entity_id)
    run = await protocols.get(conn, step.protocol_run_id)
    return run.project_id, run, step


async def record_retry(svc: Services, subject: tuple[str, int], job: str, attempt: int, error: str) -> None:
    async with svc.database.transaction() as conn:
        project_id, run, step = await _scope(conn, subject)
        await record(
            conn, project_id, "job.retrying", f"{job} failed (try {attempt}), will retry: {error[:300]}",
            run=run, step=step, job=job, attempt=attempt, error=error[:2000],
        )  # fmt: skip


async def record_gave_up(
    svc: Services, subject: tuple[str, int], job: str, attempt: int, error: str, terminal: bool
) -> None:
    async with svc.database.transaction() as conn:
        project_id, run, step = await _scope(conn, subject)
        await record(
            conn, project_id, "job.gave_up", f"{job} gave up after {attempt} tries: {error[:300]}",
            run=run, step=step, job=job, attempt=attempt, error=error[:2000], terminal=terminal,
        )  # fmt: skip
