"""Cron schedules and their firings (app.domain.schedules): one firing per (schedule, due time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.schedules import Schedule
from app.store.intake_tables import schedule_firings, schedules
from app.store.rows import fetch_all, fetch_one

MAX_SCHEDULES_PER_PROJECT = 100


async def create(
    conn: AsyncConnection, project_id: int, *, cron: str, title: str, description: str, enabled: bool
) -> Schedule:
    statement = (
        insert(schedules)
        .values(project_id=project_id, cron=cron, title=title, description=description, enabled=enabled)
        .returning(*schedules.c)
    )
    return await fetch_one(conn, statement, Schedule, what="schedule")


async def count(conn: AsyncConnection, project_id: int) -> int:
    return len(await list_for_project(conn, project_id))


async def list_for_project(conn: AsyncConnection, project_id: int) -> list[Schedule]:
    query = select(schedules).where(schedules.c.project_id == project_id).order_by(schedules.c.id)
    return await fetch_all(conn, query, Schedule)


async def get(conn: AsyncConnection, project_id: int, schedule_id: int) -> Schedule:
    query = select(schedules).where(schedules.c.project_id == project_id, schedules.c.id == schedule_id)
    return await fetch_one(conn, query, Schedule, what=f"schedule {schedule_id} of project {project_id}")


async def remove(conn: AsyncConnection, project_id: int, schedule_id: int) -> bool:
    statement = delete(schedules).where(schedules.c.project_id == project_id, schedules.c.id == schedule_id)
    return (await conn.execute(statement)).rowcount > 0


async def enabled(conn: AsyncConnection) -> list[Schedule]:
    query = select(schedules).where(schedules.c.enabled).order_by(schedules.c.id)
    return await fetch_all(conn, query, Schedule)


async def claim_firing(conn: AsyncConnection, schedule_id: int, due_at: datetime) -> bool:
    """True for the one caller that records this due time first (the primary key decides between
    concurrent passes; a loser waits for the winner's transaction, then sees its row)."""
    statement = (
        insert(schedule_firings)
        .values(schedule_id=schedule_id, due_at=due_at)
        .on_conflict_do_nothing(index_elements=["schedule_id", "due_at"])
        .returning(schedule_firings.c.schedule_id)
    )
    return (await conn.scalar(statement)) is not None


async def settle_firing(conn: AsyncConnection, schedule_id: int, due_at: datetime, run_id: int) -> None:
    await conn.execute(
        update(schedule_firings)
        .where(schedule_firings.c.schedule_id == schedule_id, schedule_firings.c.due_at == due_at)
        .values(protocol_run_id=run_id)
    )
