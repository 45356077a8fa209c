"""Status writes: compare-and-set against the domain's transition table, event in the same transaction.

    UPDATE … SET status = :target, version = version + 1
     WHERE id = :id AND status IN (:legal sources) AND version = :expected

One statement decides: of two writers racing, exactly one gets a row back. The loser is told why, by
a typed error: NotFoundError, IllegalTransitionError (the status moved on), or StaleWriteError (same
status, newer version).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.events import NewEvent, protocol_status_event, step_status_event
from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import (
    PROTOCOL_MOVED_ON,
    STEP_MOVED_ON,
    ProtocolStatus,
    StepStatus,
    check_protocol_transition,
    check_step_transition,
    protocol_sources,
    step_sources,
)
from app.errors import NotFoundError, StaleWriteError
from app.store import events as event_store
from app.store.rows import to_record, writable_changes
from app.store.tables import protocol_runs, step_runs

FINISHED_PROTOCOL = frozenset({ProtocolStatus.COMPLETED, ProtocolStatus.FAILED, ProtocolStatus.CANCELLED})
FINISHED_STEP = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED})


@dataclass(frozen=True)
class _Machine:
    """What differs between the protocol and the step machines."""

    table: Table
    what: str
    status_type: type[StrEnum]
    sources: Callable[[Any], frozenset]
    check: Callable[[Any, Any], None]
    event_type: Callable[[Any], str]
    started: StrEnum
    finished: frozenset
    moved_on: frozenset


PROTOCOL = _Machine(
    protocol_runs,
    "protocol run",
    ProtocolStatus,
    protocol_sources,
    check_protocol_transition,
    protocol_status_event,
    ProtocolStatus.RUNNING,
    FINISHED_PROTOCOL,
    PROTOCOL_MOVED_ON,
)
STEP = _Machine(
    step_runs,
    "step run",
    StepStatus,
    step_sources,
    check_step_transition,
    step_status_event,
    StepStatus.RUNNING,
    FINISHED_STEP,
    STEP_MOVED_ON,
)


async def move_protocol(
    conn: AsyncConnection,
    run_id: int,
    target: ProtocolStatus,
    *,
    expected_version: int,
    reason: str | None = None,
    changes: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> ProtocolRun:
    """Move a protocol run to `target`, writing `changes` alongside and appending `protocol.<target>`."""
    row, source = await _move(conn, PROTOCOL, run_id, target, expected_version, changes or {})
    run = to_record(ProtocolRun, row)
    await _record(conn, run.project_id, run.id, None, PROTOCOL, source, target, reason, payload)
    return run


async def move_step(
    conn: AsyncConnection,
    step_id: int,
    target: StepStatus,
    *,
    expected_version: int,
    reason: str | None = None,
    changes: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
    project_id: int | None = None,
) -> StepRun:
    """Move a step run to `target`, writing `changes` alongside and appending `step.<target>`.

    Moving to `running` counts an attempt. `project_id`, when the caller knows the step's project,
    saves looking it up.
    """
    extra = dict(changes or {})
    if target is StepStatus.RUNNING:
        extra["attempts"] = step_runs.c.attempts + 1
    row, source = await _move(conn, STEP, step_id, target, expected_version, extra)
    step = to_record(StepRun, row)
    if project_id is None:
        query = select(protocol_runs.c.project_id).where(protocol_runs.c.id == step.protocol_run_id)
        project_id = int((await conn.execute(query)).scalar_one())
    await _record(conn, project_id, step.protocol_run_id, step.id, STEP, source, target, reason, payload)
    return step


async def _move(
    conn: AsyncConnection,
    machine: _Machine,
    row_id: int,
    target: StrEnum,
    expected_version: int,
    changes: Mapping[str, Any],
) -> tuple[Any, StrEnum]:
    table = machine.table
    if target in machine.moved_on:
        changes = {"last_error": None, **changes}
    # The status before the write, read from the same row in the same statement.
    previous = select(table.c.status).where(table.c.id == row_id).scalar_subquery().label("previous_status")
    statement = (
        update(table)
        .where(
            table.c.id == row_id,
            table.c.status.in_([str(s) for s in machine.sources(target)]),
            table.c.version == expected_version,
        )
        .values(
            **writable_changes(table, changes),
            status=str(target),
            version=table.c.version + 1,
            updated_at=func.now(),
            started_at=func.coalesce(table.c.started_at, func.now())
            if target == machine.started
            else table.c.started_at,
            finished_at=func.now() if target in machine.finished else None,
        )
        .returning(table, previous)
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        await _explain_lost_write(conn, machine, row_id, target, expected_version)
    return row, machine.status_type(row.previous_status)


async def _explain_lost_write(
    conn: AsyncConnection, machine: _Machine, row_id: int, target: StrEnum, expected_version: int
) -> None:
    table = machine.table
    current = (
        await conn.execute(select(table.c.status, table.c.version).where(table.c.id == row_id))
    ).first()
    if current is None:
        raise NotFoundError(f"{machine.what} {row_id} not found")
    machine.check(machine.status_type(current.status), target)  # IllegalTransitionError
    raise StaleWriteError(
        f"{machine.what} {row_id} is at version {current.version}, not {expected_version}",
        current_version=current.version,
        current=current.status,
    )


async def _record(
    conn: AsyncConnection,
    project_id: int,
    protocol_run_id: int,
    step_run_id: int | None,
    machine: _Machine,
    source: StrEnum,
    target: StrEnum,
    reason: str | None,
    payload: Mapping[str, Any] | None,
) -> None:
    body = {"from": str(source), "to": str(target), **(payload or {})}
    if reason:
        body["reason"] = reason
    subject = f"{machine.what} {step_run_id or protocol_run_id}"
    await event_store.append(
        conn,
        NewEvent(
            project_id=project_id,
            protocol_run_id=protocol_run_id,
            step_run_id=step_run_id,
            event_type=machine.event_type(target),
            message=f"{subject}: {source} → {target}" + (f" ({reason})" if reason else ""),
            payload=body,
        ),
    )
