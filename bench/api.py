"""How fast the JSON API answers reads, against a bare aiohttp + asyncpg server reading the same rows.

One run, one fresh database (`tg_apibench_<pid>`, created here, migrated, dropped at the end) holding
`--runs` protocol runs (default 10,000, written with COPY, not through the API) over `--projects`
projects. Four processes besides this one:

- the API server: `create_app` (worker off, bearer token on, access log off, logs at WARNING) under
  `web.run_app`, exactly the serving path of `tasksgodzilla serve`; it keeps no answers: every read
  goes to the database;
- the baseline server: a bare aiohttp handler answering a constant JSON body (the framework's ceiling);
- a reference server: bare aiohttp handlers reading the same row, or the same page of 50 rows,
  through an asyncpg pool (no middleware, authentication, SQLAlchemy, pydantic or transaction): what
  any database read can reach on this machine;
- the load generator: wrk when it is installed, else an aiohttp-client generator (`--role load`),
  `--connections` keep-alive connections (default 32), closed loop, loopback only, bounded in time
  and in request count.

Measures, interleaved over `--rounds` so a busy moment of the machine hits each alike: the ceiling;
the reference, one row and a page; `GET /protocols/{id}` (a random run each request), the same with
an `If-None-Match` naming its current ETag (a 304); `GET /projects/{id}/protocols?limit=50`, the
first page and a deep page (`--deep-page`, through the cursor the API gives out). req/s is the median
over rounds, p99 the worst round; beside them, the server process's CPU use (from /proc: a saturated
server shows ~100 %, one starved by other processes far less) and its CPU time per request, the
figure least moved by a busy machine. Targets (the issue): `GET /protocols/{id}` at least 0.8x the
reference's req/s and at most 1.3x its CPU per request; a page of 50 at most 3x one row's CPU; p99
under 50 ms; each is printed as met or not. The exit status is 0 whether or not they are met (1
only when the benchmark itself failed, e.g. an unexpected status), unless `--fail-on-miss`.

    .venv/bin/python bench/api.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/api.py --quick                   # smoke run, < 20 s
    .venv/bin/python bench/api.py --generator python        # without wrk
    .venv/bin/python bench/api.py --profile /tmp/api.prof   # + cProfile of the API server process

Without `--database-url` an embedded PostgreSQL runs in a temporary folder.
"""

# ruff: noqa: E402 - the imports follow the sys.path fix below

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the standard library's `queue` (which asyncio and aiohttp import): run
# as a script, this folder must not be on the import path.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import os
import platform
import pstats
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

CONNECTIONS = 32
PAGE = 50
TARGET_RPS_SHARE = 0.8  # of the reference's req/s, for one row
TARGET_CPU_RATIO = 1.3  # of the reference's CPU per request, for one row
TARGET_PAGE_CPU_RATIO = 3.0  # a page of 50 against one row, both ours
TARGET_P99_MS = 50.0
MAX_REQUESTS = 5_000_000  # bound of the Python generator, per measure

CEILING = "ceiling: bare aiohttp, constant JSON"
REFERENCE = "reference: bare aiohttp + asyncpg, one row"
REFERENCE_PAGE = "reference: bare aiohttp + asyncpg, 50 rows"
GET_ONE = "GET /protocols/{id}"
NOT_MODIFIED = "GET /protocols/{id}, If-None-Match: 304"
TENANT = "GET /protocols/{id}, project token"
FIRST_PAGE = "GET /projects/{id}/protocols, first page"
DEEP_PAGE = "GET /projects/{id}/protocols, deep page"
MEASURES = (CEILING, REFERENCE, REFERENCE_PAGE, GET_ONE, NOT_MODIFIED, TENANT, FIRST_PAGE, DEEP_PAGE)
API_MEASURES = (GET_ONE, NOT_MODIFIED, TENANT, FIRST_PAGE, DEEP_PAGE)  # ours (p99 target)
PAGE_MEASURES = (FIRST_PAGE, DEEP_PAGE)
EXPECTED_STATUS = {NOT_MODIFIED: 304}  # every other measure: 200


# --- the servers (run as child processes of this script) ---------------------------------------------


def serve_api(port: int, profile_path: str | None) -> None:
    """The application as `tasksgodzilla serve` runs it, settings from the TASKSGODZILLA_* environment."""
    from app.config import load_settings
    from app.logs import configure_logging
    from app.web.app import create_app

    settings = load_settings()
    configure_logging(settings)
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    app = create_app(settings, url)
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=5)
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)


def serve_baseline(port: int) -> None:
    """A bare aiohttp handler: no middleware, no database, a constant JSON body."""
    body = json.dumps({"id": 1, "status": "ok"}).encode()

    async def constant(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", constant)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=5)


def serve_reference(port: int) -> None:
    """The least a database read can cost here: a bare handler, an asyncpg pool, one query, json.dumps.

    No middleware, no authentication, no SQLAlchemy, no pydantic, no transaction: what `GET
    /protocols/{id}` and a page of 50 would cost with nothing but the framework and the driver (the
    same pool size as ours: 10 + 10 overflow).
    """
    import asyncpg

    from app.store.database import with_driver

    url = with_driver(os.environ["TG_APIBENCH_DATABASE_URL"], None)
    query = "SELECT * FROM protocol_runs WHERE id = $1"
    page_query = f"SELECT * FROM protocol_runs WHERE project_id = $1 ORDER BY id DESC LIMIT {PAGE}"

    async def one(request: web.Request) -> web.Response:
        async with request.app[POOL].acquire() as conn:
            row = await conn.fetchrow(query, int(request.match_info["id"]))
        if row is None:
            raise web.HTTPNotFound()
        return web.Response(text=json.dumps(dict(row), default=str), content_type="application/json")

    async def page(request: web.Request) -> web.Response:
        async with request.app[POOL].acquire() as conn:
            rows = await conn.fetch(page_query, int(request.match_info["id"]))
        body = {"items": [dict(row) for row in rows], "next_cursor": None}
        return web.Response(text=json.dumps(body, default=str), content_type="application/json")

    async def pool(app: web.Application) -> AsyncIterator[None]:
        async with asyncpg.create_pool(url, min_size=1, max_size=20) as opened:
            app[POOL] = opened
            yield

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_get("/protocols/{id}", one)
    app.router.add_get("/projects/{id}/protocols", page)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=5)


POOL: web.AppKey[Any] = web.AppKey("pool", object)


# --- the load generators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What one measure requests: `path`, with `{id}` replaced by a random id in `ids` when given."""

    base: str
    path: str
    ids: tuple[int, int] | None = None
    headers: tuple[tuple[str, str], ...] = ()  # besides the bearer token
    bearer: bool = True  # send the service's bearer token (else `headers` hold the credential)

    def url(self, rng: random.Random) -> str:
        if self.ids is None:
            return self.base + self.path
        return self.base + self.path.replace("{id}", str(rng.randint(*self.ids)))


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad_status: int  # error answers (4xx, 5xx)
    socket_errors: int
    server_cpu: float = math.nan  # CPU seconds the server process used meanwhile (Linux only)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_share(self) -> float:
        """How busy the server was: 1.0 is one CPU all the time (its ceiling, being one process)."""
        return self.server_cpu / self.seconds if self.seconds else math.nan

    @property
    def cpu_per_request_us(self) -> float:
        return 1e6 * self.server_cpu / self.requests if self.requests else math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc; NaN where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


async def python_load(
    target: Target, token: str, connections: int, duration: float, max_requests: int
) -> Result:
    """`connections` workers on keep-alive connections, each sending its next request on an answer."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if target.bearer else {}
    headers |= dict(target.headers)
    latencies: list[float] = []
    counts = {"bad": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

        async def worker(seed: int, until: float) -> None:
            rng = random.Random(seed)
            clock = time.perf_counter
            while clock() < until and len(latencies) < max_requests:
                url = target.url(rng)
                start = clock()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    counts["errors"] += 1
                    continue
                latencies.append(clock() - start)
                counts["bad"] += status >= 400  # as wrk counts

        started = time.perf_counter()
        await asyncio.gather(*(worker(i, started + duration) for i in range(connections)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return Result(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        bad_status=counts["bad"],
        socket_errors=counts["errors"],
    )


WRK_SCRIPT = """
local lo, hi = {lo}, {hi}
local path = "{path}"
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
{request}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TGBENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""
WRK_RANDOM_REQUEST = """
function request()
  return wrk.format(nil, (path:gsub("{id}", tostring(math.random(lo, hi)))))
end
"""


def wrk_load(target: Target, token: str, connections: int, duration: float) -> Result:
    """wrk (one thread: it needs far less CPU than the servers it loads) with a Lua reporter."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        lo, hi = target.ids or (0, 0)
        script.write(
            WRK_SCRIPT.format(
                lo=lo, hi=hi, path=target.path, request=WRK_RANDOM_REQUEST if target.ids else ""
            )
        )
    try:
        return _wrk(target, token, connections, max(1, round(duration)), script.name)
    finally:
        os.unlink(script.name)


def _wrk(target: Target, token: str, connections: int, seconds: int, script: str) -> Result:
    bearer = {"Authorization": f"Bearer {token}"} if target.bearer else {}
    sent = (*bearer.items(), *target.headers)
    headers = [arg for name, value in sent for arg in ("-H", f"{name}: {value}")]
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", *headers, "-s", script,
        target.base + target.path.replace("{id}", "1"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("TGBENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    requests, micros, p50, p99, bad, errors = (int(x) for x in line.split()[1:])
    return Result(requests, micros / 1e6, p50 / 1000, p99 / 1000, bad, errors)


def python_load_process(target: Target, token: str, connections: int, duration: float) -> Result:
    """The Python generator in its own process, so it does not share an event loop with this one."""
    command = [
        sys.executable, __file__, "--role", "load", "--load-target", json.dumps(target.__dict__),
        "--connections", str(connections), "--duration", str(duration),
    ]  # fmt: skip
    env = {**os.environ, "TG_APIBENCH_TOKEN": token}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    return Result(**json.loads(done.stdout.strip().splitlines()[-1]))


# --- the database ----------------------------------------------------------------------------------------


def bench_database(
    server_url: str | None, scratch: Path
) -> contextlib.AbstractContextManager[tuple[str, str]]:
    """A fresh migrated database `tg_apibench_<pid>` (dropped after), and where it is."""
    from app.store.scratch import migrated_database

    return migrated_database(server_url, f"tg_apibench_{os.getpid()}", scratch)


RUN_COLUMNS = (
    "project_id", "number", "name", "title", "description", "status", "base_branch", "branch_name",
    "protocol_root", "head_sha", "pr_url", "pr_number", "planning_engine",
    "planning_model", "execution_engine", "execution_model", "qa_engine", "qa_model",
    "planning_prompt_version", "plan_attempts", "summary", "last_error", "started_at", "finished_at",
    "created_at", "updated_at", "version", "correlation_id",
)  # fmt: skip


def seed(url: str, runs: int, projects: int) -> dict[int, list[int]]:
    """`runs` protocol runs, round-robin over `projects` projects, by COPY; each project's run ids."""
    import psycopg

    from app.domain.naming import protocol_name
    from app.domain.statuses import ProtocolStatus
    from app.store.database import with_driver

    if runs > projects * 9999:
        raise SystemExit(f"--runs {runs}: at most 9,999 runs per project ({projects} projects)")
    rng = random.Random(7)
    statuses = [s.value for s in ProtocolStatus]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with psycopg.connect(with_driver(url, None)) as conn:
        project_ids = [
            conn.execute(
                "INSERT INTO projects (name, local_path, status, protocol_counter, organisation_id) "
                "SELECT %s, %s, 'ready', %s, id FROM organisations WHERE slug = 'default' RETURNING id",
                (f"bench-{i}", f"/srv/repos/bench-{i}", len(range(i, runs, projects))),
            ).fetchone()[0]
            for i in range(projects)
        ]
        with conn.cursor().copy(f"COPY protocol_runs ({', '.join(RUN_COLUMNS)}) FROM STDIN") as copy:
            for i in range(runs):
                number = i // projects + 1
                name = protocol_name(number, f"bench-task-{number}")
                status = rng.choice(statuses)
                created = start + timedelta(minutes=i)
                done = status in ("failed", "cancelled", "completed")
                copy.write_row(
                    (
                        project_ids[i % projects], number, name, f"Bench task {number}: tidy the module",
                        "Refactor the module so that its public functions are documented and tested. " * 3,
                        status, "main", name, f".protocols/{name}",
                        secrets.token_hex(20), f"https://github.com/acme/bench/pull/{i}" if done else None,
                        i if done else None, "codex", "gpt-5.1-codex", "codex", "gpt-5.1-codex", "codex",
                        "gpt-5.1-codex", "planning-v3", 1, "Done." if done else None,
                        "agent exited 1" if status == "failed" else None, created + timedelta(seconds=5),
                        created + timedelta(minutes=30) if done else None, created, created, 3, f"bench-{i}",
                    )
                )  # fmt: skip
        conn.execute("ANALYZE")
        rows = conn.execute("SELECT project_id, id FROM protocol_runs ORDER BY project_id, id DESC")
        ids: dict[int, list[int]] = {p: [] for p in project_ids}
        for project_id, run_id in rows:
            ids[project_id].append(run_id)
    return ids


# --- orchestration -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(
    role: str, port: int, env: dict[str, str], extra: list[str]
) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, __file__, "--role", role, "--port", str(port), *extra]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -signal.SIGINT):
                log.seek(0)
                output = log.read()[-3000:].decode(errors="replace")
                print(f"{role} server exited {process.returncode}: {output}", file=sys.stderr)


def get_json(
    url: str, token: str | None = None, timeout: float = 5, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a 304 too
        return exc.code, exc.read()[:500]


def wait_until_up(url: str, deadline: float) -> None:
    while True:
        try:
            status, body = get_json(url, timeout=1)
            if status == 200:
                return
        except OSError:
            status, body = 0, "no answer"
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer 200 in time (last: {status} {body!r})")
        time.sleep(0.05)


def check_targets(
    api: str, token: str, project_id: int, ids: list[int], deep_page: int
) -> tuple[str, str, str]:
    """Check each URL answers what it should; the cursor of the deep page, as the API gives it out,
    the ETag every seeded run has, and a token of the listed project."""
    from app.web.api.models import encode_cursor

    def expect(ok: bool, what: str, answer: object) -> None:
        if not ok:
            raise SystemExit(f"the API did not answer as expected: {what}: {str(answer)[:500]}")

    listing = f"{api}/projects/{project_id}/protocols?limit={PAGE}"
    status, one = get_json(f"{api}/protocols/{ids[0]}", token)
    expect(status == 200 and one["id"] == ids[0], "GET /protocols/{id}", (status, one))
    etag = f'"{one["version"]}"'
    status, body = get_json(f"{api}/protocols/{ids[-1]}", token, headers={"If-None-Match": etag})
    expect(status == 304 and body == b"", "If-None-Match: the current ETag, 304", (status, body))
    status, body = get_json(f"{api}/protocols/{ids[0]}")
    expect(status == 401, "without the bearer token, 401", (status, body))
    status, first = get_json(listing, token)
    expect(status == 200 and [r["id"] for r in first["items"]] == ids[:PAGE], "first page", status)
    status, second = get_json(f"{listing}&cursor={first['next_cursor']}", token)
    expect(status == 200 and [r["id"] for r in second["items"]] == ids[PAGE : 2 * PAGE], "page 2", status)
    offset = (deep_page - 1) * PAGE
    if deep_page < 2 or offset + PAGE > len(ids):
        raise SystemExit(f"--deep-page {deep_page}: must be 2 or more; the project has {len(ids)} runs")
    cursor = encode_cursor(ids[offset - 1])
    status, deep = get_json(f"{listing}&cursor={cursor}", token)
    expect(status == 200 and [r["id"] for r in deep["items"]] == ids[offset : offset + PAGE], "deep", status)
    issued = urllib.request.Request(
        f"{api}/projects/{project_id}/token", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(issued, timeout=10) as answer:
        project_token = json.loads(answer.read())["token"]
    status, mine = get_json(f"{api}/protocols/{ids[0]}", headers={"X-Project-Token": project_token})
    expect(status == 200 and mine["id"] == ids[0], "a project token reads its own run", (status, mine))
    return cursor, etag, project_token


def profile_summary(path: str, top: int) -> None:
    """Where the API server's time went: own time by package, then the costliest functions.

    cProfile counts a coroutine's every resumption as a call and its cumulative time across awaits,
    so read the own-time (tottime) figures; the cumulative ones of coroutines overstate.
    """
    stats = pstats.Stats(path)
    buckets: dict[str, float] = {}
    total = 0.0
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        buckets[_bucket(filename, function)] = buckets.get(_bucket(filename, function), 0.0) + tottime
    print(
        f"\nAPI server profile ({path}): own time by area, of {total:.2f} s wall clock "
        "(epoll 'poll' = the event loop waiting: for the database, the network, or a CPU)"
    )
    for name, seconds in sorted(buckets.items(), key=lambda kv: -kv[1])[:16]:
        print(f"  {name:38} {seconds:8.2f} s {100 * seconds / total:6.1f} %")
    print(f"\ntop {top} functions by own time")
    stats.sort_stats("tottime").print_stats(top)
    print(f"top {top} functions by cumulative time")
    stats.sort_stats("cumulative").print_stats(top)


def _bucket(filename: str, function: str) -> str:
    if filename == "~":
        return f"builtin: {function.strip('<>').split(' of ')[0][:30]}"
    if f"{os.sep}app{os.sep}" in filename and "site-packages" not in filename:
        return "app: " + filename.split(f"{os.sep}app{os.sep}", 1)[1].split(os.sep)[0].removesuffix(".py")
    if "site-packages" in filename:
        return filename.split("site-packages" + os.sep, 1)[1].split(os.sep)[0].removesuffix(".py")
    return "stdlib: " + Path(filename).stem


def measure(args: argparse.Namespace) -> int:
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    elif generator == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install wrk)")
    quiet_logs()
    token = "bench-" + secrets.token_hex(16)
    scratch = Path(tempfile.mkdtemp(prefix="tg-apibench-"))
    os.chmod(scratch, 0o755)  # the embedded server may run as another user
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    api_port, baseline_port, reference_port = (free_port() for _ in range(3))
    api, baseline = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{baseline_port}"
    reference = f"http://127.0.0.1:{reference_port}"

    def load(target: Target, seconds: float) -> Result:
        if generator == "wrk":
            return wrk_load(target, token, args.connections, seconds)
        return python_load_process(target, token, args.connections, seconds)

    try:
        with contextlib.ExitStack() as stack:
            baseline_server = stack.enter_context(server_process("baseline", baseline_port, base_env, []))
            url, where = stack.enter_context(bench_database(args.database_url, scratch))
            api_env = {
                **base_env,
                "TASKSGODZILLA_DATABASE_URL": url,
                "TASKSGODZILLA_API_TOKEN": token,
                "TASKSGODZILLA_RUN_WORKER": "false",
                "TASKSGODZILLA_LOG_LEVEL": "WARNING",
                "TASKSGODZILLA_DATA_DIR": str(scratch / "data"),
            }
            profile = ["--profile-out", args.profile] if args.profile else []
            api_server = stack.enter_context(server_process("api", api_port, api_env, profile))
            reference_env = {**base_env, "TG_APIBENCH_DATABASE_URL": url}
            reference_server = stack.enter_context(
                server_process("reference", reference_port, reference_env, [])
            )
            ids = seed(url, args.runs, args.projects)
            project_id = next(iter(ids))
            wait_until_up(f"{baseline}/", time.monotonic() + 30)
            wait_until_up(f"{api}/health", time.monotonic() + 60)
            wait_until_up(f"{reference}/protocols/{next(iter(ids.values()))[0]}", time.monotonic() + 30)
            listed = ids[project_id]
            cursor, etag, project_token = check_targets(api, token, project_id, listed, args.deep_page)
            all_ids = sorted(i for project in ids.values() for i in project)
            id_range = (all_ids[0], all_ids[-1])
            list_path = f"/projects/{project_id}/protocols?limit={PAGE}"
            loads = {
                CEILING: (baseline_server.pid, Target(baseline, "/")),
                REFERENCE: (reference_server.pid, Target(reference, "/protocols/{id}", id_range)),
                REFERENCE_PAGE: (
                    reference_server.pid,
                    Target(reference, f"/projects/{project_id}/protocols"),
                ),
                GET_ONE: (api_server.pid, Target(api, "/protocols/{id}", id_range)),
                # Every seeded run is at the same version: one ETag names each run's current answer.
                NOT_MODIFIED: (
                    api_server.pid,
                    Target(api, "/protocols/{id}", id_range, (("If-None-Match", etag),)),
                ),
                # A tenant: the token looked up, the run's project checked, each request.
                TENANT: (
                    api_server.pid,
                    Target(
                        api,
                        f"/protocols/{ids[project_id][0]}",
                        headers=(("X-Project-Token", project_token),),
                        bearer=False,
                    ),
                ),
                FIRST_PAGE: (api_server.pid, Target(api, list_path)),
                DEEP_PAGE: (api_server.pid, Target(api, f"{list_path}&cursor={cursor}")),
            }
            setup_seconds = time.monotonic() - started
            if args.warmup > 0:
                for _pid, target in loads.values():
                    load(target, args.warmup)
            results: dict[str, list[Result]] = {name: [] for name in MEASURES}
            for _round in range(args.rounds):
                for name, (pid, target) in loads.items():
                    cpu_before = cpu_seconds(pid)
                    result = load(target, args.duration)
                    result.server_cpu = cpu_seconds(pid) - cpu_before
                    results[name].append(result)
        # The servers have stopped here: the profile is written.
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    context = {
        "generator": generator,
        "where": where,
        "listed": len(ids[project_id]),
        "setup": setup_seconds,
        "total": time.monotonic() - started,
        "load": load_before,
    }
    report(args, results, context)
    if args.profile:
        profile_summary(args.profile, args.profile_top)
    if any(r.bad_status or r.requests == 0 for rs in results.values() for r in rs):
        print("FAILED: some answers were errors (see the table)")
        return 1
    missed = any(not met for *_rest, met in goals(results))
    return 1 if missed and args.fail_on_miss else 0


def quiet_logs() -> None:
    """This process's own log lines (the embedded server's start and stop) at WARNING and up only."""
    from app.config import load_settings
    from app.logs import configure_logging

    configure_logging(load_settings(log_level="WARNING"))


def p99(rs: list[Result]) -> float:
    return max(r.p99_ms for r in rs)


def rps(rs: list[Result]) -> float:
    return statistics.median(r.rps for r in rs)


def cpu_us(rs: list[Result]) -> float:
    return statistics.median(r.cpu_per_request_us for r in rs)


def baseline_of(name: str) -> str:
    """What a measure is compared with: the reference's same read (ours), the ceiling (the reference)."""
    if name in PAGE_MEASURES or name == REFERENCE_PAGE:
        return REFERENCE_PAGE if name != REFERENCE_PAGE else CEILING
    return REFERENCE if name not in (REFERENCE, CEILING) else CEILING


PAGE_GOAL = f"≤ {TARGET_PAGE_CPU_RATIO:g}"


def goals(results: dict[str, list[Result]]) -> list[tuple[str, float, str, bool]]:
    """(what, figure, goal, met) for each of the issue's targets."""
    one = results[GET_ONE]
    checks = [
        (
            f"{GET_ONE}: req/s × reference",
            rps(one) / rps(results[REFERENCE]),
            f"≥ {TARGET_RPS_SHARE:g}",
            rps(one) >= TARGET_RPS_SHARE * rps(results[REFERENCE]),
        ),
        (
            f"{GET_ONE}: CPU per request × reference",
            cpu_us(one) / cpu_us(results[REFERENCE]),
            f"≤ {TARGET_CPU_RATIO:g}",
            cpu_us(one) <= TARGET_CPU_RATIO * cpu_us(results[REFERENCE]),
        ),
    ]
    for name in PAGE_MEASURES:
        ratio = cpu_us(results[name]) / cpu_us(one)
        checks.append(
            (
                f"{name}: CPU × one row's",
                ratio,
                f"≤ {TARGET_PAGE_CPU_RATIO:g}",
                ratio <= TARGET_PAGE_CPU_RATIO,
            )
        )
    for name in API_MEASURES:
        worst = p99(results[name])
        checks.append((f"{name}: p99 ms", worst, f"< {TARGET_P99_MS:g}", worst < TARGET_P99_MS))
    return checks


def report(args: argparse.Namespace, results: dict[str, list[Result]], context: dict[str, Any]) -> None:
    if context["generator"] == "wrk":
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
        generator = (version.split("[")[0].strip() or "wrk") + ", 1 thread"
    else:
        generator = "python (aiohttp client, own process; it caps the ceiling, see below)"
    offset = (args.deep_page - 1) * PAGE
    print(
        f"settings: {args.runs:,} protocol runs over {args.projects} projects ({context['listed']:,} in the "
        f"listed one); {args.connections} connections; {args.rounds} round(s) × {args.duration:g} s "
        f"(after {args.warmup:g} s warm-up each); limit={PAGE}; deep page = page {args.deep_page} "
        f"(runs {offset + 1:,}–{offset + PAGE:,}, by cursor)"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {context['load']:.2f} before the run, Python "
        f"{platform.python_version()}; load generator: {generator}"
    )
    print(f"PostgreSQL: {context['where']}; setup {context['setup']:.1f} s, total {context['total']:.1f} s")
    if args.profile:
        print("NOTE: the API server ran under cProfile; its figures are slower than without it")
    print(
        f"\n{'measure':42}  {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  {'srv CPU':>7} {'µs/req':>7}  "
        f"{'compared with':>13} {'× req/s':>7} {'× CPU':>6}  {'errors':>6} {'sock err':>8}"
    )
    for name in MEASURES:
        rs = results[name]
        base = baseline_of(name)
        p50 = statistics.median(r.p50_ms for r in rs)
        cpu = statistics.median(r.cpu_share for r in rs)
        against = (
            "ceiling" if base == CEILING else ("ref. 50 rows" if base == REFERENCE_PAGE else "ref. 1 row")
        )
        rps_ratio = rps(rs) / rps(results[base]) if name != CEILING else 1.0
        cpu_ratio = cpu_us(rs) / cpu_us(results[base]) if name != CEILING else 1.0
        print(
            f"{name:42}  {rps(rs):7,.0f} {p50:7.1f} {p99(rs):7.1f}  {cpu:7.0%} {cpu_us(rs):7,.0f}  "
            f"{against if name != CEILING else '—':>13} {rps_ratio:7.2f} {cpu_ratio:6.2f}  "
            f"{sum(r.bad_status for r in rs):6} {sum(r.socket_errors for r in rs):8}"
        )
    checks = goals(results)
    print("\ntargets (the issue)")
    for what, figure, goal, met in checks:
        print(f"  {what:58} {figure:8.2f}  goal {goal:6}  {'met' if met else 'MISSED'}")
    missed = sum(not met for *_rest, met in checks)
    print(f"targets: {'all met' if not missed else f'{missed} of {len(checks)} missed'}")
    print(
        "req/s: median of rounds; p99: worst round; srv CPU: the server process's CPU use during the "
        "measure (100 % = one CPU, all a single process can use; well below it, the server waited, "
        "e.g. for CPUs other processes held); µs/req: its CPU time per request, the figure a busy "
        "machine moves least. The API keeps no answers: every 200 is read from the database (a 304 "
        "too: the ETag is the row's version). The reference rows are not ours: bare handlers, no "
        "authentication, what any database read can reach here"
    )
    if context["generator"] != "wrk":
        print(
            "NOTE: without wrk the load generator is Python; it needs more CPU per request than the bare "
            "server, so the ceiling here is the generator's, not aiohttp's (apt-get install wrk)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server where databases may be created (default: embedded)")
    parser.add_argument("--runs", type=int, default=10_000, help="protocol runs in the database")
    parser.add_argument("--projects", type=int, default=2, help="projects the runs are spread over")
    parser.add_argument("--deep-page", type=int, default=80, help="which page of 50 is the deep one")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measure and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before the first round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s, no warm-up")
    parser.add_argument("--profile", metavar="FILE", help="run the API server under cProfile, stats here")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is missed")
    # Internal: the child processes.
    parser.add_argument("--role", choices=("bench", "api", "baseline", "reference", "load"), default="bench")
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--load-target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "api":
        serve_api(args.port, args.profile_out)
    elif args.role == "baseline":
        serve_baseline(args.port)
    elif args.role == "reference":
        serve_reference(args.port)
    elif args.role == "load":
        target = json.loads(args.load_target)
        result = asyncio.run(
            python_load(
                Target(
                    target["base"],
                    target["path"],
                    tuple(target["ids"]) if target["ids"] else None,
                    tuple((name, value) for name, value in target["headers"]),
                    target["bearer"],
                ),
                os.environ["TG_APIBENCH_TOKEN"],
                args.connections,
                args.duration,
                MAX_REQUESTS,
            )
        )
        print(json.dumps(result.__dict__))
    else:
        if args.quick:
            args.rounds, args.duration, args.warmup = 1, 2.0, 0.0
        sys.exit(measure(args))


if __name__ == "__main__":
    main()
