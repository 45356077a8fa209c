"""Protocol runs: create (with a race-free NNNN), read, list, update non-status fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.commits import MAX_PROTOCOL_NUMBER
from app.domain.naming import protocol_name
from app.domain.records import ProtocolRun
from app.domain.statuses import ProtocolStatus
from app.errors import ConflictError, StaleWriteError
from app.logs import current_correlation_id, new_correlation_id
from app.store import metric_counts
from app.store import projects as project_store
from app.store.rows import compare_and_set, fetch_all, fetch_one, page_size, to_record, writable_changes
from app.store.tables import projects as projects_table
from app.store.tables import protocol_runs, step_runs


async def create(
    conn: AsyncConnection, project_id: int, *, title: str, slug: str, **fields: Any
) -> ProtocolRun:
    """Insert a `pending` run numbered after the project's last one; base branch defaults to the project's."""
    project = await project_store.get(conn, project_id)
    number = await project_store.next_protocol_number(conn, project_id)
    if number > MAX_PROTOCOL_NUMBER:
        raise ConflictError(
            f"project {project.name} has {MAX_PROTOCOL_NUMBER:,} protocol runs, the most it can hold",
            field="project_id",
        )
    values = writable_changes(protocol_runs, fields)
    values.setdefault("base_branch", project.base_branch)
    values.setdefault("correlation_id", current_correlation_id() or new_correlation_id())
    statement = (
        insert(protocol_runs)
        .values(project_id=project_id, number=number, name=protocol_name(number, slug), title=title, **values)
        .returning(protocol_runs)
    )
    return to_record(ProtocolRun, (await conn.execute(statement)).one())


async def get(conn: AsyncConnection, run_id: int) -> ProtocolRun:
    return await fetch_one(
        conn,
        select(protocol_runs).where(protocol_runs.c.id == run_id),
        ProtocolRun,
        what=f"protocol run {run_id}",
    )


async def list_for_project(
    conn: AsyncConnection,
    project_id: int,
    *,
    statuses: list[ProtocolStatus] | None = None,
    before_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[ProtocolRun]:
    """Newest first, optionally only some statuses, or names/titles containing `search`; pass the
    last id seen as `before_id`."""
    query = (
        select(protocol_runs)
        .where(protocol_runs.c.project_id == project_id)
        .order_by(protocol_runs.c.id.desc())
        .limit(page_size(limit))
    )
    if statuses:
        query = query.where(protocol_runs.c.status.in_([str(s) for s in statuses]))
    if before_id is not None:
        query = query.where(protocol_runs.c.id < before_id)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                protocol_runs.c.name.ilike(pattern, escape="\\"),
                protocol_runs.c.title.ilike(pattern, escape="\\"),
            )
        )
    return await fetch_all(conn, query, ProtocolRun)


async def status_counts(conn: AsyncConnection, project_ids: list[int]) -> dict[int, dict[str, int]]:
    """How many runs each project has in each status (projects without runs are absent), from the
    counts kept as runs change (app/store/metric_counts.py): never a count over the runs."""
    if not project_ids:
        return {}
    counted = await metric_counts.read(conn, project_ids=project_ids)
    counts: dict[int, dict[str, int]] = {}
    for (project_id, status), (count,) in counted.get("protocol_runs", []):
        counts.setdefault(int(project_id), {})[status] = int(count)
    return counts


async def update_fields(
    conn: AsyncConnection, run_id: int, *, expected_version: int, **changes: Any
) -> ProtocolRun:
    """Change fields (not the status) if the row is still at `expected_version`."""
    return await compare_and_set(
        conn,
        protocol_runs,
        ProtocolRun,
        run_id,
        expected_version=expected_version,
        changes=changes,
        what=f"protocol run {run_id}",
    )


async def list_by_status(
    conn: AsyncConnection, statuses: list[ProtocolStatus], *, after_id: int = 0, limit: int = 500
) -> list[ProtocolRun]:
    """Runs in any of `statuses` with an id above `after_id`, oldest first: the scheduler's scan
    pages through all of them by passing the last id it saw."""
    query = (
        select(protocol_runs)
        .where(protocol_runs.c.status.in_([str(s) for s in statuses]))
        .where(protocol_runs.c.id > after_id)
        .order_by(protocol_runs.c.id)
        .limit(page_size(limit))
    )
    return await fetch_all(conn, query, ProtocolRun)


async def project_of(conn: AsyncConnection, run_id: int) -> int | None:
    return await conn.scalar(select(protocol_runs.c.project_id).where(protocol_runs.c.id == run_id))


async def on_branches(
    conn: AsyncConnection, project_ids: list[int], branches: list[str], *, pr_number: int | None = None
) -> list[ProtocolRun]:
    """Runs of these projects on one of `branches` (or whose PR/MR is `pr_number`), newest first."""
    if not project_ids or not (branches or pr_number is not None):
        return []
    matches: list[ColumnElement[bool]] = []
    if branches:
        matches.append(protocol_runs.c.branch_name.in_(branches))
    if pr_number is not None:
        matches.append(protocol_runs.c.pr_number == pr_number)
    query = (
        select(protocol_runs)
        .where(protocol_runs.c.project_id.in_(project_ids), or_(*matches))
        .order_by(protocol_runs.c.id.desc())
        .limit(50)
    )
    return await fetch_all(conn, query, ProtocolRun)


async def hold_while_planning(conn: AsyncConnection, run_id: int) -> None:
    """Lock the run's row for the caller's transaction while it is still being planned; else raise
    StaleWriteError (another worker planned it, or it was cancelled): its plan must not be written.

    Two planning jobs of one run (one frozen, its job taken over) thus write the plan one at a time.
    """
    status = await conn.scalar(
        select(protocol_runs.c.status).where(protocol_runs.c.id == run_id).with_for_update()
    )
    if status != ProtocolStatus.PLANNING:
        raise StaleWriteError(f"protocol run {run_id} is {status}, no longer being planned", run_id=run_id)


class RunIdentity(NamedTuple):
    """What a job of a run works under: the run's id and creation time (its trace id is derived from
    them) and its correlation id."""

    id: int
    created_at: datetime
    correlation_id: str


async def identity(
    conn: AsyncConnection, *, protocol_run_id: int | None = None, step_run_id: int | None = None
) -> RunIdentity | None:
    """The identity of a run (or of a step's run); None when there is no such run."""
    columns = protocol_runs.c
    query = select(columns.id, columns.created_at, columns.correlation_id)
    if step_run_id is not None:
        query = query.join(step_runs, step_runs.c.protocol_run_id == columns.id).where(
            step_runs.c.id == step_run_id
        )
    else:
        query = query.where(columns.id == protocol_run_id)
    row = (await conn.execute(query)).first()
    return None if row is None else RunIdentity(row.id, row.created_at, row.correlation_id)


async def finished_before(
    conn: AsyncConnection, project_name: str, run_names: list[str], before: datetime
) -> list[ProtocolRun]:
    """Of the runs named `run_names` in the project named `project_name`, those finished before `before`."""
    query = (
        select(protocol_runs)
        .join(projects_table, projects_table.c.id == protocol_runs.c.project_id)
        .where(
            projects_table.c.name == project_name,
            protocol_runs.c.name.in_(run_names),
            protocol_runs.c.finished_at < before,
        )
    )
    return await fetch_all(conn, query, ProtocolRun)
