"""The audit trail: every operator action (who did it: `actor`) in `audit_events`, a table no
deletion reaches, so a deleted project's history of who did what stays queryable. It starts empty:
actions before this migration named no actor.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.store.tables import XID8

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("payload", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("actor_label", sa.Text(), server_default="", nullable=False),
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("organisation_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("project_name", sa.Text(), nullable=True),
        sa.Column("protocol_run_id", sa.BigInteger(), nullable=True),
        sa.Column("step_run_id", sa.BigInteger(), nullable=True),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("txid", XID8(), server_default=sa.text("pg_current_xact_id()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_txid_id"), "audit_events", ["txid", "id"])
    op.create_index(
        op.f("ix_audit_events_organisation_id_txid_id"), "audit_events", ["organisation_id", "txid", "id"]
    )
    op.create_index(op.f("ix_audit_events_project_id_txid_id"), "audit_events", ["project_id", "txid", "id"])


def downgrade() -> None:
    op.drop_table("audit_events")
