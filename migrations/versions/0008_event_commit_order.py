"""Events in transaction order: each carries its transaction's id, and the cursor indexes end in it.

Readers hand out only events whose transaction is below their snapshot's xmin, ordered by (txid, id)
(app/store/events.py). Existing rows all committed long ago, so any value below this migration's
own xid keeps them before every new event; they are spread over that range in id order rather than
all given one value, which would teach the planner that a cursor matches no row and send scoped
reads through the global index (measured: a run's page scanning every event).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPES = ("project_id", "protocol_run_id", "step_run_id", "event_type")


def upgrade() -> None:
    op.execute("ALTER TABLE events ADD COLUMN txid xid8")
    op.execute(
        "UPDATE events SET txid = floor(id * pg_current_xact_id()::text::numeric"
        " / (SELECT max(id) + 1 FROM events))::text::xid8"
    )
    op.alter_column("events", "txid", nullable=False, server_default=sa.text("pg_current_xact_id()"))
    op.create_index(op.f("ix_events_txid_id"), "events", ["txid", "id"], unique=False)
    for scope in SCOPES:
        op.create_index(op.f(f"ix_events_{scope}_txid_id"), "events", [scope, "txid", "id"], unique=False)
        op.drop_index(op.f(f"ix_events_{scope}_id"), table_name="events")


def downgrade() -> None:
    for scope in SCOPES:
        op.create_index(op.f(f"ix_events_{scope}_id"), "events", [scope, "id"], unique=False)
        op.drop_index(op.f(f"ix_events_{scope}_txid_id"), table_name="events")
    op.drop_index(op.f("ix_events_txid_id"), table_name="events")
    op.drop_column("events", "txid")
