"""Change notifications: every write to projects, runs, steps and events is announced on one channel.

The API keeps recent answers in memory and streams events live; both learn what changed from
`LISTEN tasksgodzilla_changes` instead of asking the database again. A trigger (not the code that
writes) sends them, so no write path can forget to. NOTIFY is delivered on commit, never for a
rolled-back write. Payload: `<table>:<id>:<scope>`, the scope being the row's project (runs, events)
or protocol run (steps).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "tasksgodzilla_changes"
SCOPES = {
    "projects": "id",
    "protocol_runs": "project_id",
    "step_runs": "protocol_run_id",
    "events": "project_id",
}


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION tasksgodzilla_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            changed record;
        BEGIN
            IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
            PERFORM pg_notify(
                '{CHANNEL}',
                TG_TABLE_NAME || ':' || changed.id || ':' || coalesce(to_jsonb(changed) ->> TG_ARGV[0], '')
            );
            RETURN NULL;
        END
        $$
        """
    )
    for table, scope in SCOPES.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify_change AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tasksgodzilla_notify_change('{scope}')"
        )


def downgrade() -> None:
    for table in SCOPES:
        op.execute(f"DROP TRIGGER {table}_notify_change ON {table}")
    op.execute("DROP FUNCTION tasksgodzilla_notify_change()")
