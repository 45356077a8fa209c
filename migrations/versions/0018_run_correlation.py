"""One correlation id per protocol run, from the request that created it: every event about the run
is found by it (`GET /events?correlation_id=`), every job of the run logs it and stamps its events
with it, its agents see it, its step commits name it. Existing runs take the correlation id of their
`protocol.created` event (else `run-<id>`); events keep the id they were recorded under.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("protocol_runs", sa.Column("correlation_id", sa.Text(), nullable=True))
    op.execute(
        """
        UPDATE protocol_runs r SET correlation_id = coalesce(
            (SELECT e.correlation_id FROM events e WHERE e.protocol_run_id = r.id
               AND e.event_type = 'protocol.created' AND e.correlation_id IS NOT NULL
             ORDER BY e.id LIMIT 1),
            'run-' || r.id)
        """
    )
    op.alter_column("protocol_runs", "correlation_id", nullable=False)
    op.create_index(
        op.f("ix_events_correlation_id_txid_id"), "events", ["correlation_id", "txid", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_events_correlation_id_txid_id"), table_name="events")
    op.drop_column("protocol_runs", "correlation_id")
