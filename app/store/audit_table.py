"""The audit trail's table and its one write: every operator action, kept apart from the event log
so that deleting a project (which deletes its runs and their events) leaves the record of who did what.

No foreign keys on purpose: a row outlives its project, organisation, run and step. The project's
name and organisation are copied in when the row is written, so the trail stays readable and scoped
after the project is gone. Read in (txid, id) order, like the event log (app/store/events.py says why).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, Table, Text, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.actors import Actor
from app.domain.events import NewEvent
from app.logs import current_correlation_id
from app.store.tables import XID8, metadata, projects

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", BigInteger),  # the same action in the event log (gone with its project)
    Column("event_type", Text, nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("actor_kind", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("actor_label", Text, nullable=False, server_default=""),
    Column("via", Text, nullable=False),
    Column("organisation_id", BigInteger),
    Column("project_id", BigInteger),
    Column("project_name", Text),
    Column("protocol_run_id", BigInteger),
    Column("step_run_id", BigInteger),
    Column("correlation_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("txid", XID8, nullable=False, server_default=func.pg_current_xact_id()),
    Index(None, "txid", "id"),
    Index(None, "organisation_id", "txid", "id"),
    Index(None, "project_id", "txid", "id"),
)


async def append_audit(
    conn: AsyncConnection, actor: Actor, event: NewEvent, *, event_id: int | None = None
) -> None:
    """Record one operator action in the caller's transaction; the project's name and organisation
    are read by the same statement."""
    project = projects.c
    of_project = select(project.organisation_id).where(project.id == event.project_id).scalar_subquery()
    await conn.execute(
        insert(audit_events).values(
            event_id=event_id,
            event_type=event.event_type,
            message=event.message,
            payload=event.payload,
            actor_kind=str(actor.kind),
            actor_id=actor.id,
            actor_label=actor.label,
            via=str(actor.via),
            organisation_id=event.organisation_id if event.project_id is None else of_project,
            project_id=event.project_id,
            project_name=select(project.name).where(project.id == event.project_id).scalar_subquery(),
            protocol_run_id=event.protocol_run_id,
            step_run_id=event.step_run_id,
            correlation_id=current_correlation_id(),
        )
    )
