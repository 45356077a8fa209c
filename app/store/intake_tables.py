"""Tables of issue intake and triggers: the issues that became runs, cron schedules and their firings,
and the deliveries of the generic trigger webhook. Defined on the one `metadata` (app/store/schema.py)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.store.tables import metadata

# One row per forge issue a project takes in: its last known state, and the run it became (if any).
intake_issues = Table(
    "intake_issues",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("provider", Text, nullable=False),
    Column("number", Integer, nullable=False),
    Column("url", Text, nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    Column("open", Boolean, nullable=False),
    Column("labels", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("protocol_run_id", BigInteger, ForeignKey("protocol_runs.id", ondelete="SET NULL")),
    # The run was cancelled because the issue was closed or unlabelled: labelled again, it gets a new one.
    Column("cancelled_by_intake", Boolean, nullable=False, server_default=text("false")),
    Column("cancel_reason", Text, nullable=False, server_default=""),
    # Progress milestones of the current run already commented on the issue.
    Column("posted", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("project_id", "number"),
    UniqueConstraint("protocol_run_id"),
    CheckConstraint("provider IN ('github', 'gitlab')", name="intake_provider_known"),
)

# A project's cron schedule: each due time creates one run from its template.
schedules = Table(
    "schedules",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("cron", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Each due time a schedule fired at: the unique key lets exactly one of several workers create its run.
schedule_firings = Table(
    "schedule_firings",
    metadata,
    Column("schedule_id", BigInteger, ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("due_at", DateTime(timezone=True), primary_key=True),
    Column("protocol_run_id", BigInteger, ForeignKey("protocol_runs.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Deliveries of the generic trigger webhook, once per (project, delivery id): a replay changes nothing.
trigger_deliveries = Table(
    "trigger_deliveries",
    metadata,
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("delivery_id", Text, primary_key=True),
    Column("protocol_run_id", BigInteger, ForeignKey("protocol_runs.id", ondelete="SET NULL")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
