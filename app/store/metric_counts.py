"""Counts kept as the rows change, so `/metrics` and the projects page read a few hundred rows, never a table.

Triggers (migration 0021) append what each write adds to or takes from a count to `metric_deltas`, in
the writing transaction: a count is exactly as committed as the rows it counts, and no two writers
wait on one counter row. `fold` moves the deltas into `metric_totals` (one row per family and label
set) and reads Procrastinate's new events into the job-duration histogram; `read` sums totals and
deltas not folded yet, so it is exact whenever the fold last ran. Families and their values:

- `protocol_runs` [project id, status]: runs; `step_runs` [project id, status, QA verdict]: steps;
- `agent_runs` [project id, stage, engine, model, status]: runs, input, cached input, output and
  reasoning tokens, cost, seconds;
- `agent_durations` and `job_durations` [..., le]: finished runs (tries) and their seconds, by the
  histogram bucket they fall in (the least bound they are at most, or `+Inf`);
- `qa_verdicts` [project id, verdict]; `webhook_deliveries` [provider, outcome]: deliveries kept.
"""

# ruff: noqa: S608 - SQL built from constants here, never from input

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, Float, Identity, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import metadata

# One row per family and label set; the deltas not folded yet; how far a fold has read a log.
metric_totals = Table(
    "metric_totals",
    metadata,
    Column("family", Text, primary_key=True),
    Column("labels", ARRAY(Text), primary_key=True),
    Column("vals", ARRAY(Float), nullable=False),
)

metric_deltas = Table(
    "metric_deltas",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("family", Text, nullable=False),
    Column("labels", ARRAY(Text), nullable=False),
    Column("vals", ARRAY(Float), nullable=False),
)

metric_marks = Table(
    "metric_marks",
    metadata,
    Column("source", Text, primary_key=True),
    Column("last_id", BigInteger, nullable=False),
)

# Agents take seconds to an hour (TASKSGODZILLA_AGENT_TIMEOUT_SECONDS); jobs wrap them, or take less.
# The agent bounds are migration 0021's too (its triggers bucket each run as it finishes).
AGENT_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, *AGENT_BUCKETS[1:], 7200.0)
Counted = dict[str, list[tuple[tuple[str, ...], tuple[float, ...]]]]
PER_PROJECT = ("protocol_runs", "step_runs", "agent_runs", "qa_verdicts")
FOLD_LOCK = 7_320_020  # pg advisory lock: one fold at a time; another pass just skips
JOB_EVENTS = "procrastinate_events"
# Procrastinate writes an event in the statement that moves its job: one newer than this may still
# have a lower id than one committed already. A fold reads the log only up to the first such event.
SETTLE_SECONDS = 60

_SUMMED = """
SELECT family, labels, array_agg(total ORDER BY i) AS vals
  FROM (SELECT family, labels, i, sum(v) AS total
          FROM ({rows}) x CROSS JOIN LATERAL unnest(x.vals) WITH ORDINALITY u(v, i)
         GROUP BY family, labels, i) s
 GROUP BY family, labels
"""

FOLD_DELTAS = (
    "WITH gone AS (DELETE FROM metric_deltas RETURNING family, labels, vals) "
    "INSERT INTO metric_totals AS t (family, labels, vals) "
    + _SUMMED.format(rows="SELECT * FROM gone")
    + " ORDER BY family, labels "
    "ON CONFLICT (family, labels) DO UPDATE SET vals = (SELECT array_agg(coalesce(a, 0) + coalesce(b, 0) "
    "ORDER BY i) FROM unnest(t.vals, excluded.vals) WITH ORDINALITY u(a, b, i))"
)

# Each try of a job that ended between two event ids: its task, outcome and length (from `started`).
_TRIES = """
SELECT 'job_durations' AS family,
       ARRAY[j.task_name, e.type::text, tg_metric_le(extract(epoch FROM e.at - prev.at)::float8,
             CAST(:bounds AS float8[]))] AS labels,
       ARRAY[1, extract(epoch FROM e.at - prev.at)::float8] AS vals
  FROM procrastinate_events e
  JOIN procrastinate_jobs j ON j.id = e.job_id
 CROSS JOIN LATERAL (SELECT p.type, p.at FROM procrastinate_events p
                      WHERE p.job_id = e.job_id AND p.id < e.id ORDER BY p.id DESC LIMIT 1) prev
 WHERE e.id > :after AND e.id <= :upto AND prev.type = 'started'
   AND e.type IN ('succeeded', 'failed', 'deferred_for_retry', 'aborted')
"""

_SETTLED_UPTO = f"""
SELECT coalesce((SELECT min(id) - 1 FROM procrastinate_events
                  WHERE id > :after AND at >= now() - make_interval(secs => {SETTLE_SECONDS})),
                (SELECT max(id) FROM procrastinate_events), :after)
"""


async def _mark(conn: AsyncConnection) -> int:
    found = await conn.execute(text("SELECT last_id FROM metric_marks WHERE source = :s"), {"s": JOB_EVENTS})
    return found.scalar() or 0


async def fold(conn: AsyncConnection, job_bounds: Sequence[float]) -> bool:
    """Move the deltas into the totals and the settled job tries into the histogram, in `conn`'s
    transaction; False (nothing done) when another fold holds the lock."""
    locked = await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FOLD_LOCK})
    if not locked.scalar():
        return False
    after = await _mark(conn)
    upto = (await conn.execute(text(_SETTLED_UPTO), {"after": after})).scalar() or after
    if upto > after:
        await conn.execute(
            text("INSERT INTO metric_deltas (family, labels, vals) " + _SUMMED.format(rows=_TRIES)),
            {"after": after, "upto": upto, "bounds": list(job_bounds)},
        )
        await conn.execute(
            text(
                "INSERT INTO metric_marks (source, last_id) VALUES (:s, :upto) "
                "ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id"
            ),
            {"s": JOB_EVENTS, "upto": upto},
        )
    await conn.execute(text(FOLD_DELTAS))
    # A deleted project's counts go with it (its steps' deltas, written after its runs went, name no project).
    await conn.execute(
        text(
            "DELETE FROM metric_totals t WHERE t.family = ANY(:families) "
            "AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.id::text = t.labels[1])"
        ),
        {"families": list(PER_PROJECT)},
    )
    return True


async def read(
    conn: AsyncConnection, job_bounds: Sequence[float] = (), *, project_ids: Sequence[int] | None = None
) -> Counted:
    """Every family's rows (totals and deltas summed; with `job_bounds`, the job tries not folded yet
    too), with zero counts left out; per-project families keyed by project id. `project_ids`: only
    the protocol-run counts of these projects."""
    if project_ids is not None:
        rows = (
            "SELECT family, labels, vals FROM metric_totals WHERE family = 'protocol_runs' "
            "AND labels[1] = ANY(:ids) UNION ALL SELECT family, labels, vals FROM metric_deltas "
            "WHERE family = 'protocol_runs' AND labels[1] = ANY(:ids)"
        )
        params: dict[str, object] = {"ids": [str(i) for i in project_ids]}
    else:
        rows = (
            "SELECT family, labels, vals FROM metric_totals "
            "UNION ALL SELECT family, labels, vals FROM metric_deltas"
        )
        params = {}
        if job_bounds:
            rows += " UNION ALL " + _TRIES
            params = {"after": await _mark(conn), "upto": 2**63 - 1, "bounds": list(job_bounds)}
    counted: Counted = {}
    for family, labels, vals in (await conn.execute(text(_SUMMED.format(rows=rows)), params)).all():
        if vals and vals[0]:
            counted.setdefault(family, []).append(
                (tuple("" if v is None else v for v in labels), tuple(float(v or 0) for v in vals))
            )
    for found in counted.values():
        found.sort()
    return counted


def histogram(
    rows: list[tuple[tuple[str, ...], tuple[float, ...]]], bounds: Sequence[float]
) -> list[tuple[tuple[str, ...], tuple[float, ...]]]:
    """Rows by bucket (the last label) as Prometheus histograms: count, sum, then how many are at most
    each bound (cumulative)."""
    grouped: dict[tuple[str, ...], list[tuple[float, float, float]]] = {}
    for labels, (count, seconds) in rows:
        grouped.setdefault(labels[:-1], []).append((float(labels[-1]), count, seconds))
    return [
        (
            labels,
            (
                sum(n for _, n, _ in buckets),
                sum(s for _, _, s in buckets),
                *(sum(n for le, n, _ in buckets if le <= bound) for bound in bounds),
            ),
        )
        for labels, buckets in sorted(grouped.items())
    ]
