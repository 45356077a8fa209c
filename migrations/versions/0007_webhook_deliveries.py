"""CI and forges: webhook deliveries (each acted on once), a project's forge repository and fix-CI
limit, and the head a run's PR/MR was last published at.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("signal", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("protocol_run_id", sa.BigInteger(), nullable=True),
        sa.Column("step_run_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('applied', 'ignored', 'failed')", name=op.f("ck_webhook_deliveries_outcome_known")
        ),
        sa.CheckConstraint(
            "provider IN ('github', 'gitlab')", name=op.f("ck_webhook_deliveries_provider_known")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_webhook_deliveries_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["protocol_run_id"],
            ["protocol_runs.id"],
            name=op.f("fk_webhook_deliveries_protocol_run_id_protocol_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["step_run_id"],
            ["step_runs.id"],
            name=op.f("fk_webhook_deliveries_step_run_id_step_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "provider", "delivery_id", name=op.f("uq_webhook_deliveries_provider_delivery_id")
        ),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_protocol_run_id_id"),
        "webhook_deliveries",
        ["protocol_run_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_received_at"), "webhook_deliveries", ["received_at"], unique=False
    )
    op.add_column("projects", sa.Column("forge_repo", sa.Text(), nullable=True))
    op.add_column("projects", sa.Column("fix_ci_attempts", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_projects_fix_ci_attempts_range"), "projects", "fix_ci_attempts BETWEEN 0 AND 10"
    )
    op.add_column("protocol_runs", sa.Column("published_sha", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("protocol_runs", "published_sha")
    op.drop_constraint(op.f("ck_projects_fix_ci_attempts_range"), "projects", type_="check")
    op.drop_column("projects", "fix_ci_attempts")
    op.drop_column("projects", "forge_repo")
    op.drop_index(op.f("ix_webhook_deliveries_received_at"), table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_protocol_run_id_id"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
