"""Project secrets, encrypted; the credentials that rode inside stored git URLs move there.

Until now a git URL was stored as given, `https://user:token@host/x.git` included, and repeated in
the `project.created` event. Each such URL is stored bare from now on and its credential, encrypted
with the service's key (TASKSGODZILLA_SECRET_KEY, else `<data dir>/secret.key`, made on first need),
goes to `project_secrets`; events keep the URL with its password masked. Run the migration with the
same settings as the service (`serve` does, as `tasksgodzilla migrate` does from the same
environment), or the service will hold a key that does not open what was moved.

Revision ID: 0012
Revises: 0011
"""

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GIT_CREDENTIAL = "git_credential"
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@\"]+(?:@[^\s/@\"]+)*)@")


def _masked(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    scheme = match.group("scheme")
    if colon:
        return f"{scheme}{user}:********@"
    return match.group(0) if scheme.lower().startswith("ssh") else f"{scheme}********@"


def upgrade() -> None:
    op.create_table(
        "project_secrets",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_secrets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "name", name=op.f("pk_project_secrets")),
    )
    bind = op.get_bind()
    carrying = bind.execute(
        sa.text("SELECT id, git_url FROM projects WHERE git_url ~ '^https://[^/]*@'")
    ).all()
    if carrying:
        # Imported here: only a database that holds such URLs needs the key (and makes it on first need).
        from app.config import load_settings
        from app.git.credentials import split_credentials
        from app.store.secrets import secret_box

        box = secret_box(load_settings())
        for project_id, url in carrying:
            bare, credential = split_credentials(url)
            if credential is None:
                continue
            plaintext = json.dumps(
                {"host": credential.host, "username": credential.username, "password": credential.password}
            )
            bind.execute(
                sa.text(
                    "INSERT INTO project_secrets (project_id, name, ciphertext) VALUES (:id, :name, :secret) "
                    "ON CONFLICT (project_id, name) DO UPDATE SET ciphertext = excluded.ciphertext"
                ),
                {"id": project_id, "name": GIT_CREDENTIAL, "secret": box.encrypt(plaintext)},
            )
            bind.execute(
                sa.text("UPDATE projects SET git_url = :url WHERE id = :id"), {"url": bare, "id": project_id}
            )
    events = bind.execute(
        sa.text(
            "SELECT id, message, payload::text AS payload FROM events WHERE (message || payload::text) ~ '://[^/\"]*@'"
        )
    ).all()
    for event_id, message, payload in events:
        bind.execute(
            sa.text("UPDATE events SET message = :message, payload = CAST(:payload AS jsonb) WHERE id = :id"),
            {
                "id": event_id,
                "message": _USERINFO.sub(_masked, message),
                "payload": json.dumps(json.loads(_USERINFO.sub(_masked, payload))),
            },
        )


def downgrade() -> None:
    # The credentials stay where they are, encrypted: a downgrade never writes a secret in clear.
    op.drop_table("project_secrets")
