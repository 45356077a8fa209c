"""Does every page cost what a page costs, whatever the size of the tables? Reads at a small and a large size.

Two fresh databases (`tg_scalebench_<pid>_<size>`, created, migrated, dropped at the end), each seeded
with SQL (generate_series, no API) in the same proportions: per protocol run 5 steps, 2 agent runs,
10 events, half a webhook delivery and 3 finished Procrastinate jobs (with their started/succeeded
events), over 10 projects; 3.5 % of the runs are active (running or planning). The large size is the
issue's: 100,000 runs, 500,000 steps, 200,000 agent runs, 1,000,000 events, 50,000 deliveries.

One server in this process per size: `create_app` as `serve` builds it (worker off, bearer token on),
plus a timing middleware first in the chain, so the figures are server time, from the request's
arrival to its answer. Requests are sequential, interleaved between the measures and the sizes (a
busy moment of a shared machine hits both sizes alike), after a warm-up. The periodic scans
(app/jobs/duties.py) are called directly, one pass each, timed the same way (the missing-work scan
after one unmeasured pass that queues what the seeded runs lack).

Printed: p50 and p95 per measure at each size, and the growth (large p50 over small p50). Goals (the
issue): growth <= 1.5x for every paged read; /metrics and each scan pass under 1 s at the large size.
Exit status 0 whether or not they are met (1 when the benchmark itself failed, e.g. a non-200 answer).

    .venv/bin/python bench/scale.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/scale.py --quick      # smoke run: 200 and 2,000 runs, < 30 s
"""

# ruff: noqa: E402 - the imports follow the sys.path fix below

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/api.py: bench/queue.py shadows the standard library's `queue` if this folder is on the path.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import aiohttp

from bench.api import percentile, quiet_logs
from bench.console import TIMES, sign_in, start

PROJECTS = 10
LARGE = 100_000
SMALL = 1_000
HIT_WORD = "quokka"  # in one title of 100
SCAN_GOAL_MS = 1000.0
GROWTH_GOAL = 1.5
WORDS = [HIT_WORD, *(f"w{n:02d}" for n in range(1, 100))]  # one per title, round-robin

SEED = [
    # Projects, then runs round-robin over them (3.5 % active; the rest finished or waiting).
    """INSERT INTO projects (name, local_path, status, protocol_counter, organisation_id)
       SELECT 'scale-' || p, '/srv/repos/scale-' || p, 'ready', %(runs)s / 10, o.id
         FROM generate_series(1, 10) p, organisations o WHERE o.slug = 'default'""",
    """INSERT INTO protocol_runs (project_id, number, name, title, description, status, base_branch,
                                  branch_name, protocol_root, correlation_id, created_at, updated_at)
       SELECT pr.id, i / 10 + 1, lpad((i / 10 + 1)::text, 4, '0') || '-scale-task',
              'Scale task ' || (i / 10 + 1) || ': tidy the '
              || (%(words)s::text[])[i %% 100 + 1] || ' module',
              'Refactor the module.',
              CASE WHEN i %% 200 < 4 THEN 'running' WHEN i %% 200 < 7 THEN 'planning'
                   WHEN i %% 200 < 9 THEN 'pending' WHEN i %% 200 < 20 THEN 'failed' ELSE 'completed' END,
              'main', lpad((i / 10 + 1)::text, 4, '0') || '-scale-task', '.protocols/x', 'seed-' || i,
              now() - make_interval(mins => %(runs)s - i), now() - make_interval(mins => %(runs)s - i)
         FROM generate_series(0, %(runs)s - 1) i
         JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM projects) pr ON pr.k = i %% 10
        ORDER BY i""",
    """INSERT INTO step_runs (protocol_run_id, step_index, name, step_file, status, qa_verdict, started_at)
       SELECT r.id, s, '0' || s || '-step', '0' || s || '-step.md',
              CASE WHEN r.status = 'completed' THEN 'completed' WHEN r.status = 'running' AND s = 1
                   THEN 'running' ELSE 'pending' END,
              CASE WHEN r.status = 'completed' THEN 'pass' END, now()
         FROM protocol_runs r, generate_series(1, 5) s""",
    """INSERT INTO agent_runs (project_id, protocol_run_id, step_run_id, stage, engine, model, status,
                               input_tokens, output_tokens, cost_usd, duration_ms, finished_at)
       SELECT r.project_id, r.id, st.id, CASE WHEN st.step_index = 1 THEN 'execution' ELSE 'qa' END,
              'codex', 'gpt-5', 'succeeded', 1000 + st.id %% 500, 100, 0.01, 1000 * (st.id %% 900), now()
         FROM step_runs st JOIN protocol_runs r ON r.id = st.protocol_run_id WHERE st.step_index <= 2""",
    # 10 events per run: common kinds, a QA verdict, and rare ones (project setup, the watchdog).
    """INSERT INTO events (project_id, protocol_run_id, step_run_id, event_type, message, payload)
       SELECT r.project_id, r.id, NULL,
              (ARRAY['protocol.created', 'plan.accepted', 'step.created', 'agent.started', 'agent.finished',
                     'step.committed', 'qa.verdict', 'agent.started', 'agent.finished', 'branch.pushed'])[k],
              'event ' || k, CASE WHEN k = 7 THEN '{"verdict": "pass"}' ELSE '{}' END::jsonb
         FROM protocol_runs r, generate_series(1, 10) k ORDER BY r.id, k""",
    """INSERT INTO events (project_id, event_type, message, payload)
       SELECT p.id, e, 'setup', CASE WHEN e = 'setup.clarifications' THEN '{"questions": []}' ELSE '{}'
              END::jsonb
         FROM projects p, unnest(ARRAY['project.created', 'project.ready', 'setup.clarifications']) e""",
    """INSERT INTO events (project_id, protocol_run_id, event_type, message)
       SELECT r.project_id, r.id, 'watchdog.stuck', 'stuck' FROM protocol_runs r WHERE r.id %% 5000 = 0""",
    """INSERT INTO webhook_deliveries (provider, delivery_id, event, signal, outcome, project_id, received_at)
       SELECT 'github', 'd-' || i, 'check_run', '{}'::jsonb, 'applied', NULL, now()
         FROM generate_series(1, %(runs)s / 2) i""",
    # Finished jobs as a week of Procrastinate keeps them (the retention duty deletes older ones).
    """INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args, status, attempts)
       SELECT 'default', (ARRAY['execute_step_job', 'run_qa_job', 'plan_protocol_job'])[i %% 3 + 1],
              NULL, NULL, '{}'::jsonb, 'succeeded', 1
         FROM generate_series(1, %(runs)s * 3) i""",
    """INSERT INTO procrastinate_events (job_id, type, at)
       SELECT j.id, t.type::procrastinate_job_event_type, now() - interval '1 day' + t.offset_
         FROM procrastinate_jobs j,
              (VALUES ('started', interval '0 s'), ('succeeded', interval '12 s')) t(type, offset_)""",
    "VACUUM ANALYZE",  # as autovacuum does after a while (visibility map, GIN pending lists)
]


def seed(url: str, runs: int) -> dict[str, Any]:
    """Seed `runs` runs and everything in proportion; what the measures need to name."""
    import psycopg

    from app.store.database import with_driver

    with psycopg.connect(with_driver(url, None), autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement, {"runs": runs, "words": WORDS})
        project_id, _ = conn.execute(
            "SELECT project_id, count(*) FROM protocol_runs GROUP BY 1 ORDER BY 1 LIMIT 1"
        ).fetchone()
        ids = [r for (r,) in conn.execute(
            "SELECT id FROM protocol_runs WHERE project_id = %s ORDER BY id DESC", (project_id,)
        )]  # fmt: skip
    return {"project_id": project_id, "deep_before": ids[len(ids) // 2], "protocol_id": ids[len(ids) // 3]}


def targets(given: dict[str, Any]) -> dict[str, str]:
    from app.web.api.models import encode_cursor

    project, protocol = given["project_id"], given["protocol_id"]
    runs = f"/projects/{project}/protocols?limit=50"
    return {
        "runs, first page": runs,
        "runs, deep page": f"{runs}&cursor={encode_cursor(given['deep_before'])}",
        "runs, title search (hit)": f"{runs}&q={HIT_WORD}",
        "runs, title search (no hit)": f"{runs}&q=zebrafish",
        "project events": f"/projects/{project}/events?limit=50",
        "project events, type qa.verdict": f"/projects/{project}/events?limit=50&type=qa.verdict",
        "protocol events, type qa.verdict": f"/protocols/{protocol}/events?limit=50&type=qa.verdict",
        "GET /metrics": "/metrics",
        "GET /queue": "/queue",
        "console project page": f"/console/projects/{project}",
        "console project live fragment": f"/console/projects/{project}/live",
        "console activity, type watchdog.": "/console/activity?type=watchdog.",
        "console projects page": "/console/",
    }


async def settle(url: str) -> None:
    """Fold the kept counts once, as the periodic duty would have done all along (where they exist)."""
    try:
        from app.store import metric_counts
    except ImportError:
        return  # counted at each scrape: nothing kept
    from sqlalchemy import text

    from app.store.database import Database

    database = Database(url)
    try:
        async with database.transaction() as conn:
            await metric_counts.fold(conn, metric_counts.JOB_BUCKETS)
        async with (
            database.read() as conn
        ):  # the seed's deltas folded: their dead rows gone, as autovacuum does
            await conn.execute(text("VACUUM ANALYZE metric_deltas"))
    finally:
        await database.engine.dispose()


async def measure(
    sizes: list[tuple[str, dict[str, Any]]], requests: int, warmup: int
) -> list[dict[str, list[float]]]:
    """Every measure at every size, interleaved request by request, so that a busy moment of the
    machine (other processes share it) hits each size alike."""
    results: list[dict[str, list[float]]] = [{} for _ in sizes]
    servers = []
    bearer = {"Authorization": "Bearer console-bench-token-0123456789"}
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            for url, _ in sizes:
                await settle(url)
                servers.append(await start(url))
                await sign_in(session, servers[-1][1])  # the cookie is per host and port
            for i in range(warmup + requests):
                for name in targets(sizes[0][1]):
                    for (_, given), (_, base, app), found in zip(sizes, servers, results, strict=True):
                        app[TIMES].clear()
                        path = targets(given)[name]
                        async with session.get(base + path, headers=bearer, allow_redirects=False) as answer:
                            body = await answer.read()
                            if answer.status != 200:
                                raise SystemExit(f"FAILED: {name} answered {answer.status}: {body[:300]!r}")
                        if i >= warmup:
                            found.setdefault(name, []).append(app[TIMES][-1])
    finally:
        for runner, _, _ in servers:
            await runner.cleanup()
    await measure_scans([url for url, _ in sizes], max(3, requests // 4), results)
    return results


async def measure_scans(urls: list[str], passes: int, results: list[dict[str, list[float]]]) -> None:
    """One pass of each periodic scan (the hourly retention duties apart), `passes` times per size,
    interleaved, with the services a worker has."""
    from app.config import Settings
    from app.jobs import duties
    from app.jobs.runtime import open_runtime

    settings = Settings(run_worker=False, log_level="WARNING")
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [await stack.enter_async_context(open_runtime(settings, url)) for url in urls]
        scans = [duty for duty in duties.duties(60) if duty.cron == duties.interval_cron(60)]
        for job_app, svc in runtimes:  # queues what the seeded active runs lack, once
            await next(d for d in scans if d.name == "requeue_missing_work").call(job_app, svc)
        for _ in range(passes):
            for duty in scans:
                for (job_app, svc), found in zip(runtimes, results, strict=True):
                    started = time.perf_counter()
                    await duty.call(job_app, svc)
                    found.setdefault(f"scan: {duty.name}", []).append((time.perf_counter() - started) * 1000)


def report(sizes: list[int], results: list[dict[str, list[float]]], setups: list[float]) -> None:
    small, large = sizes
    print(
        f"settings: {PROJECTS} projects; per run 5 steps, 2 agent runs, 10 events, 0.5 webhook deliveries, "
        "3 finished jobs; 3.5 % of runs active; server time (timing middleware); sequential requests, "
        "sizes interleaved"
    )
    print(f"sizes: {small:,} and {large:,} protocol runs; setup {setups[0]:.1f} s and {setups[1]:.1f} s; "
          f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    head = f"{small:,} runs"
    tail = f"{large:,} runs"
    print(f"\n{'measure':36}  {head + ' p50/p95 ms':>24}  {tail + ' p50/p95 ms':>26}  {'growth':>7}")
    slow = []
    for name in results[0]:
        a, b = sorted(results[0][name]), sorted(results[1][name])
        pa, pb = statistics.median(a), statistics.median(b)
        growth = pb / pa if pa else float("inf")
        bounded = name.startswith("scan: ") or name == "GET /metrics"
        if (bounded and pb > SCAN_GOAL_MS) or (not bounded and growth > GROWTH_GOAL):
            slow.append(name)
        print(
            f"{name:36}  {pa:11.2f} /{percentile(a, 0.95):9.2f}  {pb:12.2f} /{percentile(b, 0.95):10.2f}"
            f"  {growth:6.2f}x"
        )
    verdict = "met" if not slow else "NOT met: " + ", ".join(slow)
    print(f"goals (growth <= {GROWTH_GOAL}x per paged read; /metrics and each scan pass "
          f"< {SCAN_GOAL_MS:g} ms at {large:,} runs): {verdict}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server where databases may be created (default: embedded)")
    parser.add_argument("--small", type=int, default=SMALL, help="protocol runs of the small size")
    parser.add_argument("--large", type=int, default=LARGE, help="protocol runs of the large size")
    parser.add_argument("--requests", type=int, default=40, help="measured requests per measure and size")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests per measure first")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 and 2,000 runs, 5 requests")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.requests, args.warmup = 200, 2_000, 5, 1
    from app.store.scratch import migrated_database

    quiet_logs()
    sizes, setups = [], []
    with tempfile.TemporaryDirectory(prefix="tg-scalebench-") as scratch, contextlib.ExitStack() as stack:
        server_url, where = args.database_url, "given server"
        if server_url is None:
            server_url, where = stack.enter_context(embedded(Path(scratch))), "embedded server"
        for runs in (args.small, args.large):
            started = time.monotonic()
            name = f"tg_scalebench_{os.getpid()}_{runs}"
            url, _ = stack.enter_context(migrated_database(server_url, name, Path(scratch)))
            sizes.append((url, seed(url, runs)))
            setups.append(time.monotonic() - started)
        results = asyncio.run(measure(sizes, args.requests, args.warmup))
    print(f"PostgreSQL: {where}")
    report([args.small, args.large], results, setups)


@contextlib.contextmanager
def embedded(scratch: Path) -> Iterator[str]:
    from app.store.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(scratch / "pgdata").start()
    try:
        yield server.url()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
