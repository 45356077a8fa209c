"""Organisations: every project belongs to one; an organisation's token reaches its projects only.

Existing projects move to a seeded `default` organisation (which has no token until one is issued),
then `projects.organisation_id` becomes required.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
        sa.UniqueConstraint("slug", name=op.f("uq_organisations_slug")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_organisations_token_hash")),
    )
    op.execute("INSERT INTO organisations (name, slug) VALUES ('Default', 'default')")
    op.add_column("projects", sa.Column("organisation_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE projects SET organisation_id = (SELECT id FROM organisations WHERE slug = 'default')")
    op.alter_column("projects", "organisation_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_projects_organisation_id_organisations"),
        "projects",
        "organisations",
        ["organisation_id"],
        ["id"],
    )
    op.create_index(op.f("ix_projects_organisation_id_id"), "projects", ["organisation_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_projects_organisation_id_id"), table_name="projects")
    op.drop_constraint(op.f("fk_projects_organisation_id_organisations"), "projects", type_="foreignkey")
    op.drop_column("projects", "organisation_id")
    op.drop_table("organisations")
