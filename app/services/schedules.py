"""Cron schedules of a project (app.domain.schedules): add, list, delete, and fire the due ones.

Firing is a duty run by every worker: each due time is claimed by inserting its (schedule, due time)
row, in the transaction that creates and starts its run. Of several passes at once exactly one
inserts it; the others wait on its lock and then find it there, so each due time makes one run.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.intake import issue_body
from app.domain.naming import check_task_title
from app.domain.schedules import Schedule, check_cron, latest_due
from app.domain.visible import check_visible_text
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.logs import get_logger
from app.services.context import Services
from app.services.events import record
from app.services.spawn import spawn_run
from app.store import projects
from app.store import schedules as store

log = get_logger(__name__)
MAX_DESCRIPTION = 20_000


async def add_schedule(
    svc: Services, project_id: int, *, cron: str, title: str, description: str = "", enabled: bool = True
) -> Schedule:
    cron = check_cron(cron)
    title = check_task_title(title)
    check_visible_text(description, field="description", multiline=True)
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInputError(
            f"the description is longer than {MAX_DESCRIPTION} characters", field="description"
        )
    async with svc.database.transaction() as conn:
        await projects.get(conn, project_id)
        if await store.count(conn, project_id) >= store.MAX_SCHEDULES_PER_PROJECT:
            raise ConflictError(f"a project holds at most {store.MAX_SCHEDULES_PER_PROJECT} schedules")
        schedule = await store.create(
            conn, project_id, cron=cron, title=title, description=description, enabled=enabled
        )
        await record(
            conn, project_id, "schedule.created", f"schedule {schedule.id} ({cron}) added",
            schedule=schedule.id, cron=cron, title=title, enabled=enabled,
        )  # fmt: skip
    return schedule


async def list_schedules(svc: Services, project_id: int) -> list[Schedule]:
    async with svc.database.read() as conn:
        await projects.get(conn, project_id)
        return await store.list_for_project(conn, project_id)


async def delete_schedule(svc: Services, project_id: int, schedule_id: int) -> None:
    async with svc.database.transaction() as conn:
        if not await store.remove(conn, project_id, schedule_id):
            raise NotFoundError(f"schedule {schedule_id} of project {project_id} not found")
        await record(
            conn, project_id, "schedule.deleted", f"schedule {schedule_id} deleted", schedule=schedule_id
        )


async def fire_due(svc: Services, now: datetime | None = None) -> int:
    """Create the run of each enabled schedule's latest due time not fired yet; how many were created."""
    now = now or datetime.now(UTC)
    async with svc.database.read() as conn:
        found = await store.enabled(conn)
    created = 0
    for schedule in found:
        due = latest_due(schedule.cron, now, since=schedule.created_at)
        if due is None:
            continue
        try:
            created += await _fire(svc, schedule, due)
        except Exception:
            log.exception("a schedule could not create its run", schedule=schedule.id)
    return created


async def _fire(svc: Services, schedule: Schedule, due: datetime) -> int:
    async with svc.database.transaction() as conn:
        if not await store.claim_firing(conn, schedule.id, due):
            return 0
        run = await spawn_run(
            conn,
            svc,
            schedule.project_id,
            title=schedule.title,
            description=issue_body(schedule.description),
            source="schedule",
            schedule=schedule.id,
            due_at=due.isoformat(),
        )
        await store.settle_firing(conn, schedule.id, due, run.id)
        when = due.isoformat()
        await record(
            conn, schedule.project_id, "schedule.fired", f"schedule {schedule.id} fired for {when}",
            run=run, schedule=schedule.id, due_at=when,
        )  # fmt: skip
    return 1
