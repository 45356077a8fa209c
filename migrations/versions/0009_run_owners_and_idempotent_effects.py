"""Agent runs record the job and worker running them; idempotency keys are stored with their effect.

- `agent_runs.job_id`, `job_attempt`, `worker_id`: which Procrastinate job (and which try of it) on
  which worker runs the agent, so a run is called abandoned only when that worker or job is gone. A
  partial index finds the running ones.
- `idempotency_keys`: a key is now written in the transaction that creates its resource, and only
  then; it names that resource (`resource_id`) instead of holding an answer being prepared. Keys
  still waiting for an answer (in flight under the old scheme) and stored error answers are dropped;
  a retry then runs again.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agent_runs", sa.Column("job_id", sa.BigInteger(), nullable=True))
    op.add_column("agent_runs", sa.Column("job_attempt", sa.Integer(), nullable=True))
    op.add_column("agent_runs", sa.Column("worker_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_agent_runs_running",
        "agent_runs",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'running'"),
    )

    op.add_column("idempotency_keys", sa.Column("resource_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE idempotency_keys SET resource_id = (body::jsonb ->> 'id')::bigint "
        "WHERE status BETWEEN 200 AND 299 AND body IS NOT NULL"
    )
    op.execute("DELETE FROM idempotency_keys WHERE resource_id IS NULL")
    op.alter_column("idempotency_keys", "resource_id", nullable=False)
    op.drop_column("idempotency_keys", "status")
    op.drop_column("idempotency_keys", "body")


def downgrade() -> None:
    # The old scheme replays a stored answer, which these rows do not hold: they are forgotten.
    op.execute("DELETE FROM idempotency_keys")
    op.add_column("idempotency_keys", sa.Column("body", sa.Text(), nullable=True))
    op.add_column("idempotency_keys", sa.Column("status", sa.Integer(), nullable=True))
    op.drop_column("idempotency_keys", "resource_id")

    op.drop_index(
        "ix_agent_runs_running", table_name="agent_runs", postgresql_where=sa.text("status = 'running'")
    )
    op.drop_column("agent_runs", "worker_id")
    op.drop_column("agent_runs", "job_attempt")
    op.drop_column("agent_runs", "job_id")
