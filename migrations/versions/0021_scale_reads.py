"""Reads that cost a page, whatever the size of the tables.

- `/metrics` counts: triggers (one per statement, over its transition tables) append what each write
  adds to or takes from a count to `metric_deltas`; a fold (app/store/metric_counts.py) moves them
  into `metric_totals`. A scrape reads both: a few hundred rows, never the tables themselves.
  `metric_marks` keeps how far the job-duration histogram has read Procrastinate's events.
- Event types compare in the "C" collation, so a type prefix is a range of the `event_type` index.
- Title and name search (`ILIKE '%q%'`) through trigram GIN indexes (pg_trgm, a trusted extension
  shipped with PostgreSQL and the embedded server).

Revision ID: 0021
Revises: 0020
"""

# ruff: noqa: S608 - SQL built from constants here, never from input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app/web/metrics.py AGENT_BUCKETS (a test checks they agree)
AGENT_BOUNDS = "1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600"

# What one row of each table adds to the counts: (family, labels, values), `r` the row.
CONTRIBUTIONS = {
    "protocol_runs": "VALUES ('protocol_runs', ARRAY[r.project_id::text, r.status], ARRAY[1::float8])",
    # A step whose run is gone went with it: the run's deletion took its steps out (tg_metric_run_steps).
    "step_runs": (
        "SELECT 'step_runs', ARRAY[p.project_id::text, r.status, coalesce(r.qa_verdict, '')], "
        "ARRAY[1::float8] FROM protocol_runs p WHERE p.id = r.protocol_run_id"
    ),
    "agent_runs": (
        "SELECT * FROM (VALUES ('agent_runs', ARRAY[r.project_id::text, r.stage, r.engine, "
        "coalesce(r.model, ''), r.status], ARRAY[1, r.input_tokens, r.cached_input_tokens, r.output_tokens, "
        "r.reasoning_tokens, coalesce(r.cost_usd, 0), coalesce(r.duration_ms, 0) / 1000.0]::float8[]), "
        "('agent_durations', ARRAY[r.stage, r.engine, coalesce(r.model, ''), "
        "tg_metric_le(r.duration_ms / 1000.0, tg_metric_agent_bounds())], "
        "ARRAY[1, r.duration_ms / 1000.0]::float8[])) c "
        "WHERE c.column1 = 'agent_runs' OR r.duration_ms IS NOT NULL"
    ),
    "events": (
        "SELECT 'qa_verdicts', ARRAY[r.project_id::text, coalesce(r.payload ->> 'verdict', '')], "
        "ARRAY[1::float8] WHERE r.event_type = 'qa.verdict'"
    ),
    "webhook_deliveries": (
        "VALUES ('webhook_deliveries', ARRAY[r.provider, coalesce(r.outcome, '')], ARRAY[1::float8])"
    ),
}


def _delta_insert(table: str, rows: str) -> str:
    """Append the summed contribution of `rows` (each with a `sign`) to the deltas, zeros left out."""
    return f"""
        INSERT INTO metric_deltas (family, labels, vals)
        SELECT family, labels, array_agg(total ORDER BY i)
          FROM (SELECT c.family, c.labels, u.i, sum(r.sign * u.v) AS total
                  FROM ({rows}) r
                  CROSS JOIN LATERAL ({CONTRIBUTIONS[table]}) c(family, labels, vals)
                  CROSS JOIN LATERAL unnest(c.vals) WITH ORDINALITY u(v, i)
                 GROUP BY 1, 2, 3) s
         GROUP BY family, labels
        HAVING bool_or(total <> 0)"""


# An update moves a count only when one of these changes (a row trigger's WHEN: no call otherwise).
COUNTED_COLUMNS = {
    "protocol_runs": "project_id, status",
    "step_runs": "status, qa_verdict",
    "agent_runs": "project_id, stage, engine, model, status, input_tokens, cached_input_tokens, "
    "output_tokens, reasoning_tokens, cost_usd, duration_ms",
    "webhook_deliveries": "provider, outcome",
}


def _statement_function(table: str) -> str:
    """Inserts and deletes, a statement at a time (one delta per label set, however many rows)."""
    return f"""
        CREATE FUNCTION tg_metric_deltas_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN {_delta_insert(table, "SELECT 1 AS sign, * FROM new_rows")};
            ELSE {_delta_insert(table, "SELECT -1 AS sign, * FROM old_rows")};
            END IF;
            RETURN NULL;
        END $$"""


def _row_function(table: str, name: str, rows: str) -> str:
    """A row at a time: its contributions appended as they are (no summing: one or two rows)."""
    return f"""
        CREATE FUNCTION {name}_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO metric_deltas (family, labels, vals)
            SELECT c.family, c.labels, CASE WHEN r.sign > 0 THEN c.vals ELSE tg_metric_neg(c.vals) END
              FROM ({rows}) r CROSS JOIN LATERAL ({CONTRIBUTIONS[table]}) c(family, labels, vals);
            RETURN NULL;
        END $$"""


# An update of a counted column: the old row's contribution out, the new one's in.
MOVED = "SELECT 1 AS sign, (NEW).* UNION ALL SELECT -1 AS sign, (OLD).*"
# The log takes an insert per event; only a QA verdict counts, so only a verdict calls the function.
VERDICT = "WHEN (NEW.event_type = 'qa.verdict')"


def _seed_totals(table: str) -> str:
    return f"""
        INSERT INTO metric_totals (family, labels, vals)
        SELECT family, labels, array_agg(total ORDER BY i)
          FROM (SELECT c.family, c.labels, u.i, sum(u.v) AS total
                  FROM {table} r
                  CROSS JOIN LATERAL ({CONTRIBUTIONS[table]}) c(family, labels, vals)
                  CROSS JOIN LATERAL unnest(c.vals) WITH ORDINALITY u(v, i)
                 GROUP BY 1, 2, 3) s
         GROUP BY family, labels"""


def upgrade() -> None:
    op.create_table(
        "metric_totals",
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("vals", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.PrimaryKeyConstraint("family", "labels", name=op.f("pk_metric_totals")),
    )
    op.create_table(
        "metric_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("labels", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("vals", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_deltas")),
    )
    op.create_table(
        "metric_marks",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_metric_marks")),
    )
    op.execute(f"CREATE FUNCTION tg_metric_agent_bounds() RETURNS float8[] IMMUTABLE LANGUAGE sql "
               f"AS 'SELECT ARRAY[{AGENT_BOUNDS}]::float8[]'")  # fmt: skip
    op.execute(
        "CREATE FUNCTION tg_metric_neg(vals float8[]) RETURNS float8[] IMMUTABLE LANGUAGE sql "
        "AS 'SELECT array_agg(-v ORDER BY i) FROM unnest(vals) WITH ORDINALITY u(v, i)'"
    )
    op.execute(
        "CREATE FUNCTION tg_metric_le(seconds float8, bounds float8[]) RETURNS text IMMUTABLE LANGUAGE sql "
        "AS $$ SELECT coalesce((SELECT min(b) FROM unnest(bounds) b WHERE seconds <= b)::text, '+Inf') $$"
    )
    op.alter_column("events", "event_type", type_=sa.Text(collation="C"), existing_nullable=False)
    for table in CONTRIBUTIONS:
        op.execute(_statement_function(table))
        for event, transitions in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows")):
            if table == "events" and event == "INSERT":
                op.execute(_row_function(table, "tg_metric_added", "SELECT 1 AS sign, (NEW).*"))
                op.execute(
                    f"CREATE TRIGGER tg_metric_added AFTER INSERT ON events FOR EACH ROW {VERDICT} "
                    "EXECUTE FUNCTION tg_metric_added_events()"
                )
                continue
            op.execute(
                f"CREATE TRIGGER tg_metric_deltas_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {transitions} FOR EACH STATEMENT EXECUTE FUNCTION tg_metric_deltas_{table}()"
            )
        if table in COUNTED_COLUMNS:
            columns = COUNTED_COLUMNS[table]
            op.execute(_row_function(table, "tg_metric_moves", MOVED))
            op.execute(
                f"CREATE TRIGGER tg_metric_moves AFTER UPDATE ON {table} FOR EACH ROW "
                f"WHEN ((OLD.{columns.replace(', ', ', OLD.')}) IS DISTINCT FROM "
                f"(NEW.{columns.replace(', ', ', NEW.')})) EXECUTE FUNCTION tg_metric_moves_{table}()"
            )
        op.execute(_seed_totals(table))
    # A run about to go takes its steps' counts out while they can still name its project.
    steps = "SELECT -1 AS sign, s.* FROM step_runs s WHERE s.protocol_run_id = OLD.id"
    steps_out = _delta_insert("step_runs", steps)
    op.execute(f"""
        CREATE FUNCTION tg_metric_run_steps() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {steps_out};
            RETURN OLD;
        END $$""")
    op.execute(
        "CREATE TRIGGER tg_metric_run_steps BEFORE DELETE ON protocol_runs FOR EACH ROW "
        "EXECUTE FUNCTION tg_metric_run_steps()"
    )

    # The job-duration histogram starts here (a counter reset to Prometheus): reading the whole of
    # Procrastinate's log once would hold the upgrade, or a scrape, for as long as the old scrapes took.
    op.execute(
        "INSERT INTO metric_marks (source, last_id) "
        "SELECT 'procrastinate_events', coalesce(max(id), 0) FROM procrastinate_events"
    )
    # A server without the extension (or a role that may not create it) still upgrades: search then
    # reads every run of a project, as before, and the upgrade says so.
    op.execute("""
        DO $$
        BEGIN
            BEGIN
                CREATE EXTENSION IF NOT EXISTS pg_trgm;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'no pg_trgm (%): a run search reads every run of its project', SQLERRM;
            END;
            IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                CREATE INDEX ix_protocol_runs_title_trgm ON protocol_runs USING gin (title gin_trgm_ops);
                CREATE INDEX ix_protocol_runs_name_trgm ON protocol_runs USING gin (name gin_trgm_ops);
            END IF;
        END $$""")


def downgrade() -> None:
    for column in ("title", "name"):
        op.execute(f"DROP INDEX IF EXISTS ix_protocol_runs_{column}_trgm")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")  # RESTRICT: kept (and this fails) if anything else uses it
    op.execute("DROP TRIGGER IF EXISTS tg_metric_run_steps ON protocol_runs")
    op.execute("DROP FUNCTION tg_metric_run_steps()")
    op.execute("DROP TRIGGER tg_metric_added ON events")
    op.execute("DROP FUNCTION tg_metric_added_events()")
    for table in CONTRIBUTIONS:
        for trigger in ("tg_metric_deltas_insert", "tg_metric_deltas_delete", "tg_metric_moves"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(f"DROP FUNCTION tg_metric_deltas_{table}()")
        if table in COUNTED_COLUMNS:
            op.execute(f"DROP FUNCTION tg_metric_moves_{table}()")
    op.alter_column("events", "event_type", type_=sa.Text(), existing_nullable=False)
    op.execute("DROP FUNCTION tg_metric_le(float8, float8[])")
    op.execute("DROP FUNCTION tg_metric_neg(float8[])")
    op.execute("DROP FUNCTION tg_metric_agent_bounds()")
    op.drop_table("metric_marks")
    op.drop_table("metric_deltas")
    op.drop_table("metric_totals")
