"""The branch travels through the database: each commit a run's head moves to is kept as a git bundle
(thin: only the objects since the previous head, or since the base commit for the plan's commit), so
a worker on any machine, with an empty disk, can rebuild the run's worktree at its recorded head.
The stored worktree path goes: a path is per machine, never stored as truth.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "branch_bundles",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("protocol_run_id", sa.BigInteger(), nullable=False),
        sa.Column("commit_sha", sa.Text(), nullable=False),
        sa.Column("since_sha", sa.Text(), nullable=False),
        sa.Column("bundle", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["protocol_run_id"],
            ["protocol_runs.id"],
            name=op.f("fk_branch_bundles_protocol_run_id_protocol_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_branch_bundles")),
        sa.UniqueConstraint(
            "protocol_run_id", "commit_sha", name=op.f("uq_branch_bundles_protocol_run_id_commit_sha")
        ),
    )

    # Where a run's worktree was on the machine that planned it: never true on another machine, and
    # nothing reads it now (artifacts come from git objects at the run's head).
    op.drop_column("protocol_runs", "worktree_path")


def downgrade() -> None:
    op.add_column("protocol_runs", sa.Column("worktree_path", sa.Text(), nullable=True))
    op.drop_table("branch_bundles")
