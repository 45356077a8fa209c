"""The Procrastinate job queue's schema, so that `tasksgodzilla migrate` is the one schema command.

Its SQL is many statements with `%` signs: it goes through the raw asyncpg connection (simple query
protocol), which neither prepares it nor reads `%` as a placeholder. A Procrastinate upgrade that
changes its schema needs a new revision applying its migration files.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROP_PROCRASTINATE = r"""
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature, p.prokind FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%' LOOP
        IF item.prokind = 'p' THEN
            EXECUTE format('DROP PROCEDURE IF EXISTS %s CASCADE', item.signature);
        ELSE
            EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
        END IF;
    END LOOP;
    FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\_%'
                  AND t.typtype IN ('e', 'c') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END $$;
"""


def _execute_raw(sql: str) -> None:
    driver_connection = op.get_bind().connection.driver_connection
    await_(driver_connection.execute(sql))


def upgrade() -> None:
    _execute_raw(SchemaManager.get_schema())


def downgrade() -> None:
    _execute_raw(DROP_PROCRASTINATE)
