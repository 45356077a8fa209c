"""Per-project API tokens (X-Project-Token), stored as SHA-256 hashes only.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("api_token_hash", sa.Text(), nullable=True))
    op.create_unique_constraint(op.f("uq_projects_api_token_hash"), "projects", ["api_token_hash"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_projects_api_token_hash"), "projects", type_="unique")
    op.drop_column("projects", "api_token_hash")
