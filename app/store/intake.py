"""The issues projects took in (app.domain.intake): one row per (project, issue number)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.intake import IntakeIssue, Issue
from app.domain.records import Project
from app.store.intake_tables import intake_issues
from app.store.rows import fetch_all, to_record
from app.store.tables import projects


async def upsert_locked(conn: AsyncConnection, project_id: int, issue: Issue) -> IntakeIssue:
    """Record the issue's state now and return its row, locked until the transaction ends (two
    deliveries about one issue are applied one after the other)."""
    state = {"url": issue.url, "title": issue.title, "open": issue.open, "labels": list(issue.labels)}
    statement = insert(intake_issues).values(
        project_id=project_id, provider=issue.provider.value, number=issue.number, **state
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "number"], set_={**state, "updated_at": func.now()}
        )
    )
    query = (
        select(intake_issues)
        .where(intake_issues.c.project_id == project_id, intake_issues.c.number == issue.number)
        .with_for_update()
    )
    return to_record(IntakeIssue, (await conn.execute(query)).one())


async def update_fields(conn: AsyncConnection, row_id: int, **changes: Any) -> None:
    await conn.execute(
        update(intake_issues).where(intake_issues.c.id == row_id).values(**changes, updated_at=func.now())
    )


async def list_for_project(conn: AsyncConnection, project_id: int) -> list[IntakeIssue]:
    query = select(intake_issues).where(intake_issues.c.project_id == project_id).order_by(intake_issues.c.id)
    return await fetch_all(conn, query, IntakeIssue)


async def for_run(conn: AsyncConnection, protocol_run_id: int) -> IntakeIssue | None:
    """The issue a run was made from, if it was."""
    query = select(intake_issues).where(intake_issues.c.protocol_run_id == protocol_run_id)
    row = (await conn.execute(query)).first()
    return to_record(IntakeIssue, row) if row is not None else None


async def lock_if_free(conn: AsyncConnection, row_id: int) -> IntakeIssue | None:
    """The row, locked, unless another pass holds it now (that pass posts its comments)."""
    query = select(intake_issues).where(intake_issues.c.id == row_id).with_for_update(skip_locked=True)
    row = (await conn.execute(query)).first()
    return to_record(IntakeIssue, row) if row is not None else None


async def projects_taking_issues(conn: AsyncConnection) -> list[Project]:
    query = select(projects).where(projects.c.intake_label.is_not(None)).order_by(projects.c.id)
    return await fetch_all(conn, query, Project)


FINAL_MILESTONES = ["completed", "failed", "cancelled"]


async def with_unfinished_story(conn: AsyncConnection) -> list[IntakeIssue]:
    """Issues with a run whose last milestone (completed, failed, cancelled) was not posted yet."""
    query = (
        select(intake_issues)
        .where(
            intake_issues.c.protocol_run_id.is_not(None),
            ~intake_issues.c.posted.has_any(array(FINAL_MILESTONES)),
        )
        .order_by(intake_issues.c.id)
    )
    return await fetch_all(conn, query, IntakeIssue)
