"""How long the console's project page takes to build, beside the JSON page of the same runs.

One fresh database (`tg_consolebench_<pid>`, created, migrated, dropped at the end) holding `--runs`
protocol runs over two projects (COPY, through bench/api.py's seeding); the page measured is the
first project's, with 9,999 runs by default (NNNN run names cap a project there), beside as many of
the other project's. One server process (this one):
`create_app` as `serve` builds it (worker off, bearer token on), plus a timing middleware, first in
the chain, that only this benchmark adds: the figures are server time, from the request's arrival at
the application to its answer, without the client or the network. Requests are sequential (one
client), interleaved between the measures, after a warm-up:

- `GET /console/projects/{id}`: the console's project page (first page of 50 runs, setup panel,
  forms), signed in with the API token through the login form;
- `GET /projects/{id}/protocols?limit=50`: the JSON API's same page, read from the database each
  time, like the console page.

Target (the issue): the console page's p99 under 100 ms of server time. Exit status 0 whether or not
it is met (1 when the benchmark itself failed, e.g. a non-200 answer).

    .venv/bin/python bench/console.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/console.py --quick      # smoke run, a few seconds
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
import os
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from bench.api import percentile, quiet_logs, seed

TOKEN = "console-bench-token-0123456789"
TARGET_MS = 100.0
CONSOLE = "GET /console/projects/{id}, first page"
JSON = "GET /projects/{id}/protocols?limit=50"
MEASURES = (CONSOLE, JSON)
TIMES: web.AppKey[list[float]] = web.AppKey("bench_times", list)


def timed(app: web.Application) -> web.Application:
    """Record each request's time inside the server (the outermost middleware: all of ours counted)."""

    @web.middleware
    async def clock(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            request.app[TIMES].append((time.perf_counter() - started) * 1000)

    app.middlewares.insert(0, clock)
    app[TIMES] = []
    return app


async def start(url: str, **settings: object) -> tuple[web.AppRunner, str, web.Application]:
    from app.config import Settings
    from app.web.app import create_app

    app = timed(create_app(Settings(run_worker=False, api_token=TOKEN, log_level="WARNING", **settings), url))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}", app


async def sign_in(session: aiohttp.ClientSession, base: str) -> None:
    page = await (await session.get(base + "/console/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf, "no CSRF field on the login page"
    answer = await session.post(base + "/console/login", data={"token": TOKEN, "csrf_token": csrf.group(1)})
    if answer.status != 200 or answer.url.path != "/console/":
        raise SystemExit(f"FAILED: sign-in answered {answer.status} at {answer.url.path}")


async def measure(url: str, project_id: int, requests: int, warmup: int) -> dict[str, list[float]]:
    runner, base, app = await start(url)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    targets = {
        CONSOLE: (base + f"/console/projects/{project_id}", {}),
        JSON: (base + f"/projects/{project_id}/protocols?limit=50", bearer),
    }
    results: dict[str, list[float]] = {name: [] for name in MEASURES}
    try:
        # unsafe: the jar keeps cookies of an IP-address host (127.0.0.1)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await sign_in(session, base)
            for i in range(warmup + requests):
                for name, (target, headers) in targets.items():
                    app[TIMES].clear()
                    async with session.get(target, headers=headers, allow_redirects=False) as answer:
                        body = await answer.read()
                        if answer.status != 200:
                            raise SystemExit(f"FAILED: {name} answered {answer.status}: {body[:300]!r}")
                    if name == CONSOLE and body.count(b"data-run-id=") != 50:
                        raise SystemExit("FAILED: the console page does not list 50 runs")
                    if i >= warmup:
                        results[name].append(app[TIMES][-1])
    finally:
        await runner.cleanup()
    return results


def report(args: argparse.Namespace, results: dict[str, list[float]], where: str, setup: float) -> bool:
    print(
        f"settings: {args.runs:,} protocol runs over 2 projects ({(args.runs + 1) // 2:,} in the listed "
        f"one); {args.requests} sequential requests per measure, interleaved, after {args.warmup} warm-up "
        "each; server time (timing middleware)"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; PostgreSQL: {where}; "
          f"setup {setup:.1f} s")  # fmt: skip
    print(f"\n{'measure':52}  {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'× JSON':>7}")
    json_p50 = statistics.median(results[JSON])
    for name in MEASURES:
        ordered = sorted(results[name])
        p50 = statistics.median(ordered)
        print(
            f"{name:52}  {p50:7.2f} {percentile(ordered, 0.99):7.2f} {ordered[-1]:7.2f} {p50 / json_p50:7.2f}"
        )
    p99 = percentile(sorted(results[CONSOLE]), 0.99)
    met = p99 < TARGET_MS
    print(f"target (console page p99 < {TARGET_MS:g} ms of server time): {'met' if met else 'NOT met'}")
    print("× JSON: p50 over the p50 of the JSON page (both read the database each time)")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server where databases may be created (default: embedded)")
    parser.add_argument("--runs", type=int, default=19_998, help="protocol runs, over two projects")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per measure")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per measure first")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4,000 runs, 30 requests")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.requests, args.warmup = 4_000, 30, 5
    from app.store.scratch import migrated_database

    quiet_logs()
    started = time.monotonic()
    name = f"tg_consolebench_{os.getpid()}"
    with (
        tempfile.TemporaryDirectory(prefix="tg-consolebench-") as scratch,
        migrated_database(args.database_url, name, Path(scratch)) as (url, where),
    ):
        ids = seed(url, args.runs, 2)
        project_id = min(ids)
        setup = time.monotonic() - started
        results = asyncio.run(measure(url, project_id, args.requests, args.warmup))
        report(args, results, where, setup)


if __name__ == "__main__":
    main()
