"""Appending an event from a use case, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.events import NewEvent
from app.domain.records import ProtocolRun, StepRun
from app.store import events


async def record(
    conn: AsyncConnection,
    project_id: int,
    kind: str,
    message: str,
    *,
    run: ProtocolRun | None = None,
    step: StepRun | None = None,
    **payload: Any,
) -> None:
    """One event about a project, or one of its runs, or one step of it."""
    protocol_run_id = step.protocol_run_id if step is not None else (run.id if run is not None else None)
    await events.append(
        conn,
        NewEvent(
            project_id=project_id,
            protocol_run_id=protocol_run_id,
            step_run_id=step.id if step is not None else None,
            event_type=kind,
            message=message,
            payload=payload,
        ),
    )


async def record_action(
    conn: AsyncConnection, kind: str, message: str, *, organisation_id: int | None = None, **payload: Any
) -> None:
    """An operator action about an organisation (`organisation_id`) or the whole service (neither):
    the audit trail keeps it, naming the current actor."""
    await events.append_action(
        conn,
        NewEvent(
            project_id=None,
            organisation_id=organisation_id,
            event_type=kind,
            message=message,
            payload=payload,
        ),
    )
