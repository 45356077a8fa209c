"""Step runs: created from a plan, read, listed in order, non-status fields updated."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, bindparam, cast, func, insert, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.statuses import StepStatus
from app.errors import NotFoundError, StaleWriteError
from app.store.rows import compare_and_set, fetch_all, fetch_one, to_record, writable_changes
from app.store.tables import projects, protocol_runs, step_runs


async def create_many(
    conn: AsyncConnection, protocol_run_id: int, steps: Sequence[dict[str, Any]]
) -> list[StepRun]:
    """Insert the plan's steps (each a dict with `step_index`, `name`, `step_file`, ...), in order."""
    created = []
    # One statement per step: a plan has a few dozen at most, and each may set different columns.
    for step in sorted(steps, key=lambda s: s["step_index"]):
        values = {**writable_changes(step_runs, step), "protocol_run_id": protocol_run_id}
        row = (await conn.execute(insert(step_runs).values(**values).returning(step_runs))).one()
        created.append(to_record(StepRun, row))
    return created


async def get(conn: AsyncConnection, step_id: int) -> StepRun:
    return await fetch_one(
        conn, select(step_runs).where(step_runs.c.id == step_id), StepRun, what=f"step run {step_id}"
    )


def _in_context() -> Select:
    parts = (("s", step_runs), ("r", protocol_runs), ("p", projects))
    columns = [column.label(f"{prefix}_{column.name}") for prefix, table in parts for column in table.c]
    return (
        select(*columns)
        .select_from(
            step_runs.join(protocol_runs, protocol_runs.c.id == step_runs.c.protocol_run_id).join(
                projects, projects.c.id == protocol_runs.c.project_id
            )
        )
        .where(step_runs.c.id == bindparam("step_id"))
    )


# Built once: labelling ~100 columns costs more CPU than running the statement.
_IN_CONTEXT = _in_context()


async def get_in_context(conn: AsyncConnection, step_id: int) -> tuple[StepRun, ProtocolRun, Project]:
    """A step, its run and the run's project, read in one statement (as `get` of each would)."""
    row = (await conn.execute(_IN_CONTEXT, {"step_id": step_id})).first()
    if row is None:
        raise NotFoundError(f"step run {step_id} not found")
    values = row._mapping

    def part(prefix: str) -> dict[str, Any]:
        return {key[2:]: value for key, value in values.items() if key.startswith(f"{prefix}_")}

    return (
        StepRun.model_validate(part("s")),
        ProtocolRun.model_validate(part("r")),
        Project.model_validate(part("p")),
    )


async def list_for_protocol(conn: AsyncConnection, protocol_run_id: int) -> list[StepRun]:
    """All steps of a run in plan order (a plan has at most a few dozen)."""
    query = (
        select(step_runs)
        .where(step_runs.c.protocol_run_id == protocol_run_id)
        .order_by(step_runs.c.step_index)
    )
    return await fetch_all(conn, query, StepRun)


async def next_of(conn: AsyncConnection, protocol_run_ids: list[int]) -> dict[int, list[StepRun]]:
    """What `next_work` needs of each run's plan, in one query: its first unfinished step, or its
    first step when every one is completed (the steps before the first unfinished one change nothing
    of what comes next); no step for a run without a plan. Every run id is a key."""
    ids = func.unnest(cast(protocol_run_ids, ARRAY(BigInteger))).table_valued("id").render_derived(name="run")
    first = (
        select(step_runs)
        .where(step_runs.c.protocol_run_id == ids.c.id)
        .order_by(step_runs.c.status == StepStatus.COMPLETED.value, step_runs.c.step_index)
        .limit(1)
        .lateral("first")
    )
    found: dict[int, list[StepRun]] = {run_id: [] for run_id in protocol_run_ids}
    for step in await fetch_all(conn, select(first).select_from(ids.join(first, true())), StepRun):
        found[step.protocol_run_id].append(step)
    return found


async def list_for_protocols(conn: AsyncConnection, protocol_run_ids: list[int]) -> dict[int, list[StepRun]]:
    """The steps of each of these runs in plan order, in one query (every run id is a key)."""
    query = (
        select(step_runs)
        .where(step_runs.c.protocol_run_id.in_(protocol_run_ids))
        .order_by(step_runs.c.protocol_run_id, step_runs.c.step_index)
    )
    found: dict[int, list[StepRun]] = {run_id: [] for run_id in protocol_run_ids}
    for step in await fetch_all(conn, query, StepRun):
        found[step.protocol_run_id].append(step)
    return found


async def update_fields(
    conn: AsyncConnection, step_id: int, *, expected_version: int, **changes: Any
) -> StepRun:
    """Change fields (not the status) if the step is still at `expected_version`."""
    return await compare_and_set(
        conn,
        step_runs,
        StepRun,
        step_id,
        expected_version=expected_version,
        changes=changes,
        what=f"step run {step_id}",
    )


async def hold_lease(conn: AsyncConnection, step_id: int, lease: str) -> None:
    """Lock the step's row for the caller's transaction if `lease` is still the step's; else raise
    StaleWriteError: another worker took the step over, and this one must not touch its branch.

    A takeover writes a new lease, which waits for this lock: work done while holding it (a commit)
    is finished, and visible to the new holder, before the takeover proceeds.
    """
    held = await conn.scalar(select(step_runs.c.lease).where(step_runs.c.id == step_id).with_for_update())
    if held != lease:
        raise StaleWriteError(f"step run {step_id} was taken over by another worker", step_id=step_id)


async def running_since_before(
    conn: AsyncConnection, cutoff: datetime, *, after_id: int = 0, limit: int = 500
) -> list[StepRun]:
    """Steps `running` whose last change is older than `cutoff`, with an id above `after_id` (the
    watchdog's scan pages through them by the last id it saw)."""
    query = (
        select(step_runs)
        .where(step_runs.c.status == StepStatus.RUNNING.value, step_runs.c.updated_at < cutoff)
        .where(step_runs.c.id > after_id)
        .order_by(step_runs.c.id)
        .limit(limit)
    )
    return await fetch_all(conn, query, StepRun)


async def project_of(conn: AsyncConnection, step_id: int) -> int | None:
    """The project a step belongs to (through its protocol run)."""
    query = (
        select(protocol_runs.c.project_id)
        .select_from(step_runs.join(protocol_runs, protocol_runs.c.id == step_runs.c.protocol_run_id))
        .where(step_runs.c.id == step_id)
    )
    return await conn.scalar(query)
