"""Issue intake and triggers: a project's intake labels, the issues it took in, cron schedules with
their firings (one per due time), and the generic trigger webhook's deliveries.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.add_column("projects", sa.Column("intake_label", sa.Text()))
    op.add_column("projects", sa.Column("intake_blocked_label", sa.Text()))
    op.create_table(
        "intake_issues",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), server_default="", nullable=False),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("labels", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("protocol_run_id", sa.BigInteger(), sa.ForeignKey("protocol_runs.id", ondelete="SET NULL")),
        sa.Column("cancelled_by_intake", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("posted", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("project_id", "number"),
        sa.UniqueConstraint("protocol_run_id"),
        sa.CheckConstraint("provider IN ('github', 'gitlab')", name="intake_provider_known"),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("cron", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _now(),
    )
    op.create_table(
        "schedule_firings",
        sa.Column(
            "schedule_id",
            sa.BigInteger(),
            sa.ForeignKey("schedules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("protocol_run_id", sa.BigInteger(), sa.ForeignKey("protocol_runs.id", ondelete="SET NULL")),
        _now(),
    )
    op.create_table(
        "trigger_deliveries",
        sa.Column(
            "project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("delivery_id", sa.Text(), primary_key=True),
        sa.Column("protocol_run_id", sa.BigInteger(), sa.ForeignKey("protocol_runs.id", ondelete="SET NULL")),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trigger_deliveries")
    op.drop_table("schedule_firings")
    op.drop_table("schedules")
    op.drop_table("intake_issues")
    op.drop_column("projects", "intake_blocked_label")
    op.drop_column("projects", "intake_label")
