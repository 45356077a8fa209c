"""A project registered by local path lives on one machine: `projects.host` names it, and its jobs go
to that machine's queue (`host:<name>`). Existing such projects are put on the machine running this
migration (TASKSGODZILLA_HOST_NAME, else its host name): the one `serve` migrates from, which is where
a single-machine install registered them.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("host", sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM projects WHERE local_path IS NOT NULL LIMIT 1")).first():
        # Imported here: only a database holding such projects needs this machine's name.
        from app.config import load_settings

        bind.execute(
            sa.text("UPDATE projects SET host = :host WHERE local_path IS NOT NULL"),
            {"host": load_settings().machine},
        )


def downgrade() -> None:
    op.drop_column("projects", "host")
