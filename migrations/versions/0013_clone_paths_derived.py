"""A cloned project's path is derived on each machine from its projects root, never stored: forget the
clone paths setup used to write into `local_path` (which now means "registered by local path" only).

The `project.created` event records the local path a project was registered with: a project whose
event has none was registered by URL, and its stored path was its clone's. A project without that
event keeps its path unless it has the shape of a clone's (`…/<name>/repo`).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            """
            UPDATE projects p SET local_path = NULL, version = p.version + 1
            WHERE p.git_url IS NOT NULL AND p.local_path IS NOT NULL
              AND CASE
                WHEN EXISTS (SELECT 1 FROM events e
                             WHERE e.project_id = p.id AND e.event_type = 'project.created')
                THEN NOT EXISTS (SELECT 1 FROM events e
                                 WHERE e.project_id = p.id AND e.event_type = 'project.created'
                                   AND e.payload->>'local_path' IS NOT NULL)
                ELSE p.local_path LIKE '%/' || p.name || '/repo'
              END
            """
        )
    )


def downgrade() -> None:
    # Nothing to restore: the code before this revision also finds a clone at <projects root>/<name>/repo
    # when `local_path` is empty.
    pass
