"""Live streams (SSE) under load: many clients following one project while events are written.

One fresh database (`tg_ssebench_<pid>`, created, migrated, dropped at the end) with one project.
Three processes besides this one:

- the server: `create_app` as `tasksgodzilla serve` builds it (worker off, bearer token on, logs at
  WARNING) under `web.run_app`, plus a bench-only route that reports the SQL statements it ran
  (counted by a SQLAlchemy hook) and its hub's reads;
- the clients (`--clients`, default 500): raw asyncio sockets, one connection each, following
  `/events/stream?project_id=…` (or, with `--stream console`, the console's `/console/stream`, signed in
  once through the login form); each notes when every message id arrives;
- this process writes events into the project at `--rate` per second (default 100) for `--window`
  seconds, one INSERT per transaction (asyncpg, autocommit), noting when each commit returned.

Then it waits up to `--drain` seconds for the last deliveries and prints, per mode: delivery latency
p50/p95/p99 (commit → receipt, over every client × event; CLOCK_MONOTONIC is one clock for every
process of the machine), the share of (client, event) pairs delivered and the share of events every
client received, repeats (must be 0), SQL statements per event, the server's CPU (100 % = one core)
and its RSS idle and after the load. Two modes, the same load, one after the other on fresh servers:
`hub` (what the app does: one read per notification per process, fanned out) and `per-client` (the
old behaviour, kept here only: each stream reads its own scope on every notification and builds its
own messages). Goal (the issue): 500 clients, 100 events/s, every event delivered, p95 < 200 ms.

    .venv/bin/python bench/sse.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/sse.py --quick          # smoke run, a few seconds
    .venv/bin/python bench/sse.py --no-baseline    # the hub only

Without `--database-url` an embedded PostgreSQL runs in a temporary folder: prefer it on a shared
machine, since an event is handed out only once every older transaction of the whole server has ended
(app/store/events.py), so another program's long transaction on a shared server holds every event
back. Exit status 0 whether or not the goal is met (1 when the benchmark itself failed).
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
import base64
import contextlib
import cProfile
import json
import marshal
import math
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from aiohttp import web

from bench.api import cpu_seconds, free_port, get_json, percentile, quiet_logs, wait_until_up

TOKEN = "sse-bench-token-0123456789"
GOAL_P95_MS = 200.0
MODES = ("hub", "per-client")
PAYLOAD = json.dumps({"step_index": 1, "name": "tidy the module", "detail": "x" * 200})


# --- the server (child process) ----------------------------------------------------------------------


class PerClientHub:
    """The streams as they were before the hub (the baseline): each follower reads its own scope from
    the database on every notification and builds its own messages."""

    def __init__(self, database, feed) -> None:
        self._database, self._feed, self.reads = database, feed, 0

    async def stop(self) -> None:
        return None

    async def follow(self, interest, *, after) -> AsyncGenerator[list]:
        from app.store import events as store
        from app.web.live import IDLE_SECONDS, WAITING_SECONDS, Entry

        wake = asyncio.Event()
        wake.set()

        def on_change(change) -> None:
            if change is None or (change.table == "events" and interest.project_id in (None, change.scope)):
                wake.set()

        unsubscribe = self._feed.subscribe(on_change)
        position, waits = after, 0
        try:
            while True:
                pause = WAITING_SECONDS[min(waits, len(WAITING_SECONDS)) - 1] if waits else IDLE_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), pause)
                if not wake.is_set() and not waits and self._feed.connected:
                    yield []
                    continue
                wake.clear()
                async with self._database.read() as conn:
                    batch = await store.read_after(
                        conn,
                        position,
                        organisation_id=interest.organisation_id,
                        project_id=interest.project_id,
                        protocol_run_id=interest.protocol_run_id,
                        step_run_id=interest.step_run_id,
                        limit=200,
                    )
                self.reads += 1
                position = batch.end or position
                if len(batch.settled) == 200:
                    wake.set()
                waits = waits + 1 if batch.waiting else 0
                entries = [Entry(placed, interest.organisation_id) for placed in batch.settled]
                yield [entry for entry in entries if interest.covers(entry)]
        finally:
            unsubscribe()


def serve(port: int, url: str, mode: str) -> None:
    from sqlalchemy import event

    from app.config import Settings
    from app.domain.scopes import PUBLIC
    from app.web.app import create_app
    from app.web.keys import CHANGES, DATABASE, LIVE
    from app.web.scope import scoped

    app = create_app(Settings(run_worker=False, api_token=TOKEN, log_level="WARNING"), url)
    statements = [0]

    async def instrument(app: web.Application) -> None:
        engine = app[DATABASE].engine.sync_engine
        event.listen(engine, "before_cursor_execute", lambda *_: statements.__setitem__(0, statements[0] + 1))
        if mode == "per-client":
            app[LIVE] = PerClientHub(app[DATABASE], app[CHANGES])  # type: ignore[assignment]

    async def counters(request: web.Request) -> web.Response:
        return web.json_response({"statements": statements[0], "hub_reads": request.app[LIVE].reads})

    app.on_startup.append(instrument)
    app.router.add_get("/bench/counters", scoped(PUBLIC)(counters))
    profile = os.environ.get("TG_SSEBENCH_PROFILE")  # a path: the server's cProfile stats go there
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    try:
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=2)
    finally:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)


# --- the clients (child process) ---------------------------------------------------------------------


def event_id(cursor: bytes) -> int:
    """The event id in a message id (`base64("txid:id")`)."""
    return int(base64.urlsafe_b64decode(cursor + b"=" * (-len(cursor) % 4)).split(b":")[1])


IDS = re.compile(rb"^id: ([^\r\n]+)", re.MULTILINE)


async def follow(port: int, path: str, headers: str, log: list[tuple[bytes, float]], up: list[int]) -> None:
    """One client: the message ids of a stream as they arrive (decoded later: receiving stays cheap)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{headers}\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"stream refused: {head[:200]!r}")
    up[0] += 1
    rest = b""
    while chunk := await reader.read(1 << 16):
        now = time.monotonic()
        buffer = rest + chunk
        cut = buffer.rfind(b"\n") + 1  # whole lines now, the rest with the next read
        log.extend((cursor, now) for cursor in IDS.findall(buffer, 0, cut))
        rest = buffer[cut:]


async def run_clients(port: int, count: int, path: str, headers: str) -> dict:
    logs: list[list[tuple[bytes, float]]] = [[] for _ in range(count)]
    up = [0]
    tasks = [asyncio.create_task(follow(port, path, headers, log, up)) for log in logs]
    while up[0] < count:
        await asyncio.sleep(0.05)
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # until told to stop
    cpu = time.process_time()
    return {"logs": [[(event_id(c), at) for c, at in log] for log in logs], "cpu": cpu}


# --- orchestration -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    mode: str
    clients: int
    events: int
    latencies: list[float]  # ms, every (client, event) pair delivered
    delivered_pairs: int
    all_clients: int  # events every client received
    repeats: int
    statements: int
    hub_reads: int
    server_cpu: float  # share of one core over the window and the drain
    seconds: float
    rss_idle_mb: float
    rss_after_mb: float
    client_cpu: float


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def console_cookie(port: int) -> str:
    """Sign in to the console with the token, as a browser does; the session cookie to send."""
    import re
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    base = f"http://127.0.0.1:{port}/console"
    page = opener.open(f"{base}/login").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf, "no CSRF field on the login form"
    body = f"token={TOKEN}&csrf_token={csrf.group(1)}".encode()
    opener.open(urllib.request.Request(f"{base}/login", data=body))
    for handler in opener.handlers:
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            return "; ".join(f"{c.name}={c.value}" for c in handler.cookiejar)
    raise SystemExit("no session cookie")


async def write_events(url: str, project_id: int, rate: float, window: float) -> dict[int, float]:
    """One INSERT (one transaction) every 1/rate s for `window` s; each event's commit time."""
    import asyncpg

    from app.store.database import with_driver

    conn = await asyncpg.connect(with_driver(url, None))
    committed: dict[int, float] = {}
    try:
        insert = await conn.prepare(
            "INSERT INTO events (project_id, event_type, message, payload) "
            "VALUES ($1, 'step.created', $2, $3::jsonb) RETURNING id"
        )
        start = time.monotonic()
        for i in range(int(rate * window)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            committed[await insert.fetchval(project_id, f"bench event {i}", PAYLOAD)] = time.monotonic()
    finally:
        await conn.close()
    return committed


def measure(url: str, project_id: int, mode: str, args: argparse.Namespace) -> Outcome:
    port = free_port()
    env = {**os.environ, "TASKSGODZILLA_LOG_LEVEL": "WARNING"}
    command = [
        sys.executable,
        __file__,
        "--role",
        "server",
        "--port",
        str(port),
        "--url",
        url,
        "--mode",
        mode,
    ]
    # The server's stderr is dropped: stopping it with 500 open streams makes aiohttp log every one.
    # The server's stderr is dropped: stopping it with 500 open streams makes aiohttp log every one.
    with subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) as server:
        wait_until_up(f"http://127.0.0.1:{port}/health", time.monotonic() + 60)
        rss_idle = rss_mb(server.pid)
        if args.stream == "console":
            path, headers = f"/console/stream?project_id={project_id}", f"Cookie: {console_cookie(port)}\r\n"
        else:
            path, headers = f"/events/stream?project_id={project_id}", f"Authorization: Bearer {TOKEN}\r\n"
        with tempfile.TemporaryDirectory() as folder:
            shares = [
                len(range(i, args.clients, args.client_processes)) for i in range(args.client_processes)
            ]
            clients = []
            for i, share in enumerate(shares):
                command = [sys.executable, __file__, "--role", "clients", "--port", str(port)]
                command += ["--clients", str(share), "--path", path, "--headers", headers]
                command += ["--out", f"{folder}/{i}.marshal"]
                clients.append(
                    subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                )
            for process in clients:
                assert process.stdout is not None
                if process.stdout.readline().strip() != "ready":
                    raise SystemExit("the clients did not connect")
            time.sleep(1.0)  # every stream joined
            before = get_json(f"http://127.0.0.1:{port}/bench/counters")[1]
            cpu_before, started = cpu_seconds(server.pid), time.monotonic()
            committed = asyncio.run(write_events(url, project_id, args.rate, args.window))
            time.sleep(args.drain)
            cpu, seconds = cpu_seconds(server.pid) - cpu_before, time.monotonic() - started
            after = get_json(f"http://127.0.0.1:{port}/bench/counters")[1]
            rss_after = rss_mb(server.pid)
            received: dict = {"logs": [], "cpu": 0.0}
            for i, process in enumerate(clients):
                assert process.stdin is not None
                process.stdin.write("stop\n")
                process.stdin.flush()
                process.wait(timeout=120)
                part = marshal.loads(Path(f"{folder}/{i}.marshal").read_bytes())
                received["logs"] += part["logs"]
                received["cpu"] += part["cpu"]
        server.send_signal(signal.SIGINT)
    latencies: list[float] = []
    delivered = repeats = 0
    counts = dict.fromkeys(committed, 0)
    for log in received["logs"]:
        seen: set[int] = set()
        for eid, at in log:
            if eid not in committed:
                continue
            if eid in seen:
                repeats += 1
                continue
            seen.add(eid)
            counts[eid] += 1
            latencies.append((at - committed[eid]) * 1000)
        delivered += len(seen)
    latencies.sort()
    return Outcome(
        mode,
        args.clients,
        len(committed),
        latencies,
        delivered,
        sum(1 for n in counts.values() if n == args.clients),
        repeats,
        after["statements"] - before["statements"],
        after["hub_reads"] - before["hub_reads"],
        cpu / seconds,
        seconds,
        rss_idle,
        rss_after,
        received["cpu"],
    )


def report(args: argparse.Namespace, outcomes: list[Outcome], where: str) -> None:
    print(
        f"settings: {args.clients} clients on {args.stream} streams of one project; {args.rate:g} events/s "
        f"for {args.window:g} s, then up to {args.drain:g} s to drain; {os.cpu_count()} CPUs, load "
        f"average {os.getloadavg()[0]:.2f}; PostgreSQL: {where}"
    )
    print(
        f"\n{'mode':12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'pairs':>7} {'all got':>7} {'repeats':>7} "
        f"{'stmt/ev':>8} {'reads/ev':>8} {'srv CPU':>7} {'RSS idle':>8} {'RSS after':>9}"
    )
    for o in outcomes:
        pairs = o.delivered_pairs / (o.clients * o.events) if o.events else math.nan
        every = o.all_clients / o.events if o.events else math.nan
        print(
            f"{o.mode:12} {percentile(o.latencies, 0.5):8.1f} {percentile(o.latencies, 0.95):8.1f} "
            f"{percentile(o.latencies, 0.99):8.1f} {pairs:7.1%} {every:7.1%} {o.repeats:7} "
            f"{o.statements / o.events:8.2f} {o.hub_reads / o.events:8.2f} {o.server_cpu:7.0%} "
            f"{o.rss_idle_mb:6.0f} MB {o.rss_after_mb:7.0f} MB"
        )
    hub = outcomes[0]
    met = hub.all_clients == hub.events and percentile(hub.latencies, 0.95) < GOAL_P95_MS
    print(
        f"goal (every event to every client, p95 < {GOAL_P95_MS:g} ms, with the hub): "
        f"{'met' if met else 'NOT met'}"
    )
    if len(outcomes) > 1 and outcomes[1].latencies and hub.latencies:
        base = outcomes[1]
        slower = percentile(base.latencies, 0.95) / percentile(hub.latencies, 0.95)
        print(
            f"per-client ÷ hub: p95 ×{slower:.1f}, "
            f"statements per event ×{base.statements / max(hub.statements, 1):.0f}"
        )
    print(
        "pairs: (client, event) pairs delivered by the end of the drain; all got: events every client "
        "received; stmt/ev: SQL statements the server ran per event written (every one, the streams' "
        "reads included); reads/ev: the streams' reads of the log per event; srv CPU: the server "
        "process over the window and the drain (100 % = one core); client CPU is not the server's: "
        + ", ".join(f"{o.mode} {o.client_cpu:.1f} s" for o in outcomes)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server where databases may be created (default: embedded)")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0, help="events written per second")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of writing")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to wait for the last deliveries")
    parser.add_argument("--stream", choices=("api", "console"), default="api")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument("--no-baseline", action="store_true", help="the hub only, not the per-client streams")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 clients, 20 events/s, 2 s")
    # Internal: the child processes.
    parser.add_argument("--role", choices=("bench", "server", "clients"), default="bench")
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--headers", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        serve(args.port, args.url, args.mode)
        return
    if args.role == "clients":
        received = asyncio.run(run_clients(args.port, args.clients, args.path, args.headers))
        Path(args.out).write_bytes(marshal.dumps(received))
        return
    if args.quick:
        args.clients, args.rate, args.window, args.drain = 20, 20.0, 2.0, 2.0
    quiet_logs()
    import psycopg

    from app.store.database import with_driver
    from app.store.scratch import migrated_database

    with tempfile.TemporaryDirectory() as scratch:
        database = migrated_database(args.database_url, f"tg_ssebench_{os.getpid()}", Path(scratch))
        with database as (url, where):
            with psycopg.connect(with_driver(url, None)) as conn:
                project_id = conn.execute(
                    "INSERT INTO projects (name, local_path, status, organisation_id) "
                    "SELECT 'sse-bench', '/srv/repos/sse-bench', 'ready', id FROM organisations "
                    "WHERE slug = 'default' RETURNING id"
                ).fetchone()[0]
            modes = MODES[:1] if args.no_baseline else MODES
            outcomes = [measure(url, project_id, mode, args) for mode in modes]
            report(args, outcomes, where)


if __name__ == "__main__":
    main()
