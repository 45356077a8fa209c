"""The counts kept as rows change equal a recount of the rows, folded or not; and the reads that must
not read a whole table (a type prefix, a title search) are served by their indexes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from app.domain.events import NewEvent
from app.domain.records import AgentRunStatus
from app.store import events, metric_counts, projects, protocols, steps, tables
from app.store.metric_counts import AGENT_BUCKETS, JOB_BUCKETS
from tests.support import seed

# What the counts stand for, counted the slow way (as /metrics did before they were kept).
RECOUNT = {
    "protocol_runs": "SELECT ARRAY[project_id::text, status], ARRAY[count(*)]::float8[] FROM protocol_runs "
    "GROUP BY project_id, status",
    "step_runs": "SELECT ARRAY[r.project_id::text, s.status, coalesce(s.qa_verdict, '')], "
    "ARRAY[count(*)]::float8[] FROM step_runs s JOIN protocol_runs r ON r.id = s.protocol_run_id GROUP BY 1",
    "agent_runs": "SELECT ARRAY[project_id::text, stage, engine, coalesce(model, ''), status], "
    "ARRAY[count(*), sum(input_tokens), sum(cached_input_tokens), sum(output_tokens), "
    "sum(reasoning_tokens), coalesce(sum(cost_usd), 0), coalesce(sum(duration_ms), 0) / 1000.0]::float8[] "
    "FROM agent_runs GROUP BY 1",
    "qa_verdicts": "SELECT ARRAY[project_id::text, payload ->> 'verdict'], ARRAY[count(*)]::float8[] "
    "FROM events WHERE event_type = 'qa.verdict' GROUP BY 1",
    "webhook_deliveries": "SELECT ARRAY[provider, coalesce(outcome, '')], ARRAY[count(*)]::float8[] "
    "FROM webhook_deliveries GROUP BY 1",
}


async def _recount(conn) -> metric_counts.Counted:
    found: metric_counts.Counted = {}
    for family, query in RECOUNT.items():
        rows = (await conn.execute(text(query))).all()
        found[family] = sorted(
            (tuple(labels), tuple(round(float(v), 6) for v in vals)) for labels, vals in rows
        )
    return found


async def _kept(conn) -> metric_counts.Counted:
    counted = await metric_counts.read(conn)
    return {
        family: [(labels, tuple(round(v, 6) for v in vals)) for labels, vals in counted.get(family, [])]
        for family in RECOUNT
    }


async def _verdict(conn, project_id: int, run_id: int, verdict: str) -> None:
    await events.append(
        conn,
        NewEvent(
            project_id=project_id,
            protocol_run_id=run_id,
            event_type="qa.verdict",
            message=verdict,
            payload={"verdict": verdict},
        ),
    )


async def test_kept_counts_equal_a_recount_through_inserts_updates_deletes_and_folds(database):
    async with database.transaction() as conn:
        shop = await projects.create(conn, name="shop", local_path="/srv/shop")
        blog = await projects.create(conn, name="blog", local_path="/srv/blog")
        runs = [
            await protocols.create(conn, p.id, title=f"T{i}", slug=f"t{i}")
            for p in (shop, blog)
            for i in (1, 2)
        ]
        plans = [
            await steps.create_many(
                conn,
                run.id,
                [{"step_index": i, "name": f"0{i}-a", "step_file": f"0{i}-a.md"} for i in (1, 2)],
            )
            for run in runs
        ]
        for run, plan in zip(runs, plans, strict=True):
            await seed.agent_run(
                conn, run, plan[0], engine="codex", model="gpt-5", status=AgentRunStatus.SUCCEEDED,
                input_tokens=100, cost_usd=Decimal("0.5"), duration_ms=2500,
            )  # fmt: skip
            await seed.agent_run(conn, run, plan[1], engine="codex", model=None)  # running: no duration
            await _verdict(conn, run.project_id, run.id, "pass")
        await conn.execute(
            text(
                "INSERT INTO webhook_deliveries (provider, delivery_id, event, signal) "
                "VALUES ('github', 'a', 'status', '{}'), ('gitlab', 'b', 'push', '{}')"
            )
        )
    async with database.read() as conn:
        assert await _kept(conn) == await _recount(conn)

    async with database.transaction() as conn:  # moves, in one statement and row by row
        await conn.execute(
            text("UPDATE protocol_runs SET status = 'running' WHERE id = :id"), {"id": runs[0].id}
        )
        await conn.execute(text("UPDATE step_runs SET status = 'completed', qa_verdict = 'pass'"))
        await conn.execute(text("UPDATE step_runs SET summary = 'no count moves'"))
        await conn.execute(
            text(
                "UPDATE agent_runs SET status = 'failed', output_tokens = 7, duration_ms = 900 "
                "WHERE model IS NULL"
            )
        )
        await conn.execute(text("UPDATE webhook_deliveries SET outcome = 'applied' WHERE delivery_id = 'a'"))
    async with database.read() as conn:
        assert await _kept(conn) == await _recount(conn)
    async with database.transaction() as conn:
        assert await metric_counts.fold(conn, JOB_BUCKETS)
    async with database.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM metric_deltas"))).scalar() == 0
        assert await _kept(conn) == await _recount(conn)

    async with database.transaction() as conn:  # a run goes; then a whole project, runs and all
        await conn.execute(text("DELETE FROM protocol_runs WHERE id = :id"), {"id": runs[1].id})
        await conn.execute(text("DELETE FROM webhook_deliveries WHERE delivery_id = 'b'"))
        await conn.execute(text("DELETE FROM projects WHERE id = :id"), {"id": blog.id})
        await _verdict(conn, shop.id, runs[0].id, "fail")
    async with database.transaction() as conn:
        assert await metric_counts.fold(conn, JOB_BUCKETS)
    async with database.read() as conn:
        kept, recounted = await _kept(conn), await _recount(conn)
        assert kept == recounted
        assert all(
            labels[0] == str(shop.id) for family in metric_counts.PER_PROJECT for labels, _ in kept[family]
        )
        assert await protocols.status_counts(conn, [shop.id, blog.id]) == {shop.id: {"running": 1}}
        durations = metric_counts.histogram(
            (await metric_counts.read(conn))["agent_durations"], AGENT_BUCKETS
        )
        assert [(labels, pytest.approx(values[:2])) for labels, values in durations] == [
            (("execution", "codex", ""), (1, 0.9)),
            (("execution", "codex", "gpt-5"), (1, 2.5)),
        ]


async def test_the_migration_buckets_agent_durations_as_the_metrics_page_does(database):
    async with database.read() as conn:
        bounds = (await conn.execute(text("SELECT tg_metric_agent_bounds()"))).scalar()
    assert tuple(bounds) == AGENT_BUCKETS


async def test_a_type_prefix_is_a_range_of_the_event_type_index(database):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        await conn.execute(
            text(
                "INSERT INTO events (project_id, event_type) "
                "SELECT :p, 'agent.started' FROM generate_series(1, 5000)"
            ),
            {"p": project.id},
        )
        for kind in (
            "watchdog.stuck",
            "watchdogX",
            "watchdog/",
            "watchdog.late",
        ):  # in order, each its own txid
            await conn.execute(
                text("INSERT INTO events (project_id, event_type) VALUES (:p, :kind)"),
                {"p": project.id, "kind": kind},
            )
        await conn.execute(text("ANALYZE events"))
    async with database.read() as conn:
        found = await events.recent(conn, type_prefix="watchdog.")
        assert [e.event_type for e in found] == ["watchdog.late", "watchdog.stuck"]
        await conn.execute(text("SET enable_seqscan = off"))
        query = (
            select(tables.events)
            .where(*events.type_prefixed("watchdog."))
            .order_by(tables.events.c.txid.desc(), tables.events.c.id.desc())
            .limit(100)
        )
        plan = await _plan(
            conn, str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        )
    assert "Index Cond: ((event_type >= 'watchdog.'::text) AND (event_type < 'watchdog/'::text))" in plan, (
        plan
    )


async def test_a_title_search_reads_the_trigram_index_not_every_run(database):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        await conn.execute(
            text(
                "INSERT INTO protocol_runs (project_id, number, name, title, base_branch, correlation_id) "
                "SELECT :p, i, 'run-' || i, 'Tidy module ' || i, 'main', 'c' FROM generate_series(1, 50000) i"
            ),
            {"p": project.id},
        )
    async with database.read() as conn:  # autocommit; as autovacuum would, empties the GIN pending list
        await conn.execute(text("VACUUM ANALYZE protocol_runs"))
        assert [
            r.number for r in await protocols.list_for_project(conn, project.id, search="module 49999")
        ] == [49999]
        plan = await _plan(
            conn,
            f"SELECT * FROM protocol_runs WHERE project_id = {project.id} AND (title ILIKE '%zebrafish%' "
            "OR name ILIKE '%zebrafish%') ORDER BY id DESC LIMIT 50",
        )
    assert "ix_protocol_runs_title_trgm" in plan, plan


async def _plan(conn, query: str) -> str:
    return "\n".join(row[0] for row in (await conn.execute(text("EXPLAIN " + query))).all())
