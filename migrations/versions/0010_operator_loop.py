"""The operator loop: a retry's note for the step's next execution; the lease that fences off an
execution taken over by another worker; one project per local path.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("step_runs", sa.Column("operator_note", sa.Text(), nullable=True))
    op.add_column("step_runs", sa.Column("lease", sa.Text(), nullable=True))
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT local_path FROM projects WHERE local_path IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
            )
        )
        .all()
    )
    if shared:
        paths = ", ".join(row.local_path for row in shared)
        raise RuntimeError(f"several projects share a local path ({paths}): give each its own, then migrate")
    op.create_unique_constraint(op.f("uq_projects_local_path"), "projects", ["local_path"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_projects_local_path"), "projects", type_="unique")
    op.drop_column("step_runs", "lease")
    op.drop_column("step_runs", "operator_note")
