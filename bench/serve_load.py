"""Does the API stay responsive while the worker in the same `serve` process runs a pipeline at full speed?

One fresh database (`tg_serveload_<pid>`, created, migrated, dropped at the end) and one real
`tasksgodzilla serve` process (embedded worker on, bearer token on, logs at WARNING): `--protocols`
projects (a local bare origin + clone each), one protocol run of `--steps` steps in each, agents the
`command` engine running bench/instant_agent.sh (as bench/queue.py's pipeline (a): real worktrees,
commits and pushes, two agent processes a step). Everything goes through the HTTP API, as a client
would: register the projects, wait until they are ready, create the runs.

A client (this process, aiohttp, `--clients` connections) reads `GET /protocols/{id}` of a random run
of those, each connection pausing `--pause` ms between answers (a console or CLI polling, not a load
test), and times every answer:

- idle: `--idle` seconds with nothing running (the baseline: the same server, the same reads);
- busy: from starting every run to the last one `completed` (the worker at full speed: planning,
  agent processes, git, transcripts, commits, pushes, all in the server's event loop or its children).

Printed: p50 / p99 / max per phase, the busy phase beside the idle one (× idle), the pipeline's steps/s,
the server's CPU use; goal (the issue): p99 < 50 ms while busy. The exit status is 0 whether or not it
is met (1 when the benchmark itself failed), unless `--fail-on-miss`.

    .venv/bin/python bench/serve_load.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/serve_load.py --quick      # smoke run, < 60 s
    .venv/bin/python bench/serve_load.py --loop-report  # + what held serve's event loop, and where

Without `--database-url` an embedded PostgreSQL runs in a temporary folder.
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
import json
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp

from bench.api import cpu_seconds, free_port, percentile, quiet_logs
from bench.queue import AGENT, make_repos

TARGET_P99_MS = 50.0
WAIT_SECONDS = 600.0
IDLE = "GET /protocols/{id}, serve idle"
BUSY = "GET /protocols/{id}, serve running the pipeline"


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0

    def p(self, share: float) -> float:
        return percentile(sorted(self.latencies_ms), share)


def serve_environment(url: str, root: Path, token: str, port: int, steps: int, concurrency: int) -> dict:
    """`serve` as bench/queue.py's pipeline configures its worker, plus the API's token and port."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    return {
        **base,
        "TASKSGODZILLA_DATABASE_URL": url,
        "TASKSGODZILLA_API_TOKEN": token,
        "TASKSGODZILLA_HOST": "127.0.0.1",
        "TASKSGODZILLA_PORT": str(port),
        "TASKSGODZILLA_RUN_WORKER": "true",
        "TASKSGODZILLA_LOG_LEVEL": "WARNING",
        "TASKSGODZILLA_DATA_DIR": str(root / "data"),
        "TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES": "true",
        "TASKSGODZILLA_LOCAL_PATH_ROOTS": str(root),
        "TASKSGODZILLA_COMMAND_AGENT": json.dumps(["/bin/sh", str(AGENT)]),
        "TASKSGODZILLA_PLANNING_ENGINE": "command",
        "TASKSGODZILLA_EXECUTION_ENGINE": "command",
        "TASKSGODZILLA_QA_ENGINE": "command",
        "TASKSGODZILLA_AGENT_ENV_PASSTHROUGH": "PATH,HOME,AGENT_PLAN_STEPS",
        "TASKSGODZILLA_WORKER_CONCURRENCY": str(concurrency),
        "AGENT_PLAN_STEPS": str(steps),
    }


class Api:
    """The bench's own client of the server (set-up and status checks; not timed)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        async with self.session.request(method, self.base + path, json=body) as answer:
            data = await answer.json(content_type=None)
            if answer.status != expect:
                raise SystemExit(f"FAILED: {method} {path} answered {answer.status}: {str(data)[:500]}")
            return data

    async def wait_for(self, paths: list[str], goal: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            statuses = [(await self.call("GET", path))["status"] for path in paths]
            if all(status == goal for status in statuses):
                return
            if {"failed", "blocked", "cancelled"} & set(statuses):
                raise SystemExit(f"FAILED: not all {goal}: {statuses}")
            if time.monotonic() > deadline:
                raise SystemExit(f"FAILED: timed out waiting for {goal}: {statuses}")
            await asyncio.sleep(0.2)


async def poll_reads(
    session: aiohttp.ClientSession, base: str, ids: list[int], clients: int, pause: float, done: asyncio.Event
) -> Phase:
    """`clients` connections reading random runs until `done`, each pausing `pause` s between reads."""
    phase = Phase()
    rng = random.Random(11)

    async def client() -> None:
        while not done.is_set():
            url = f"{base}/protocols/{rng.choice(ids)}"
            started = time.perf_counter()
            try:
                async with session.get(url) as answer:
                    await answer.read()
                    ok = answer.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                phase.errors += 1
            await asyncio.sleep(pause)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    phase.seconds = time.perf_counter() - started
    return phase


async def measure(args: argparse.Namespace, url: str, root: Path, token: str) -> tuple[Phase, Phase, dict]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    paths = [make_repos(root / f"repo-{i}") for i in range(args.protocols)]
    env = serve_environment(url, root, token, port, args.steps, args.concurrency)
    command = [str(Path(sys.executable).parent / "tasksgodzilla"), "serve"]
    if args.loop_report:  # the same serve, its loop's callbacks timed (bench/loop_probe.py)
        command = [sys.executable, str(HERE / "loop_probe.py")]
        env |= {"TG_LOOP_PROBE_OUT": str(root / "loop.json"), "PYTHONPATH": str(ROOT)}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the server is gone
    server = subprocess.Popen(command, env=env, stdout=log, stderr=log)  # noqa: ASYNC220 - before any timing
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=args.clients + 2)
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
            api = Api(session, base)
            await wait_until_up(session, base, server)
            projects = [
                await api.call("POST", "/projects", {"name": f"load-{i}", "local_path": str(p)}, expect=201)
                for i, p in enumerate(paths)
            ]
            await api.wait_for([f"/projects/{p['id']}" for p in projects], "ready")
            runs = [
                await api.call("POST", f"/projects/{p['id']}/protocols", {"title": "Load"}, expect=201)
                for p in projects
            ]
            ids = [run["id"] for run in runs]

            async def phase(body: asyncio.Task | None, seconds: float | None) -> Phase:
                done = asyncio.Event()
                cpu = cpu_seconds(server.pid)
                reads = asyncio.create_task(poll_reads(session, base, ids, args.clients, args.pause, done))
                if body is not None:
                    await body
                else:
                    await asyncio.sleep(seconds or 0)
                done.set()
                result = await reads
                result.server_cpu = cpu_seconds(server.pid) - cpu
                return result

            idle = await phase(None, args.idle)
            started = time.perf_counter()

            async def pipeline() -> None:
                for run_id in ids:
                    await api.call("POST", f"/protocols/{run_id}/actions/start")
                await api.wait_for([f"/protocols/{i}" for i in ids], "completed")

            busy = await phase(asyncio.create_task(pipeline()), None)
            pipeline_seconds = time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.returncode not in (0, -signal.SIGINT):
            log.seek(0)
            print(f"serve exited {server.returncode}: {log.read()[-3000:].decode(errors='replace')}")
        log.close()
    steps = args.protocols * args.steps
    pipeline = {"steps": steps, "steps_per_s": steps / pipeline_seconds, "seconds": pipeline_seconds}
    if args.loop_report:
        pipeline["loop"] = json.loads((root / "loop.json").read_text())
    return idle, busy, pipeline


async def wait_until_up(session: aiohttp.ClientSession, base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            async with session.get(base + "/health") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"FAILED: serve did not come up (exit status {server.poll()})")
        await asyncio.sleep(0.1)


def report(args: argparse.Namespace, idle: Phase, busy: Phase, pipeline: dict, where: str) -> bool:
    print(
        f"settings: one `tasksgodzilla serve` (worker on, concurrency {args.concurrency}); "
        f"{args.protocols} protocol runs × {args.steps} steps, instant shell agent, real git; "
        f"{args.clients} polling connections, {args.pause * 1000:g} ms pause between reads; idle phase "
        f"{args.idle:g} s"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python "
        f"{platform.python_version()}; PostgreSQL: {where}"
    )
    print(f"\n{'measure':48}  {'reads':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'× idle p99':>10} "
          f"{'srv CPU':>7} {'errors':>6}")  # fmt: skip
    for name, phase in ((IDLE, idle), (BUSY, busy)):
        ratio = phase.p(0.99) / idle.p(0.99) if idle.latencies_ms else float("nan")
        cpu = phase.server_cpu / phase.seconds if phase.seconds else float("nan")
        print(
            f"{name:48}  {len(phase.latencies_ms):6} {phase.p(0.5):7.1f} {phase.p(0.99):7.1f} "
            f"{max(phase.latencies_ms, default=float('nan')):7.1f} {ratio:10.2f} {cpu:7.0%} {phase.errors:6}"
        )
    print(
        f"pipeline (with the reads): {pipeline['steps']} steps in {pipeline['seconds']:.1f} s, "
        f"{pipeline['steps_per_s']:.2f} steps/s"
    )
    if "loop" in pipeline:
        loop_report(pipeline["loop"])
    met = busy.p(0.99) < TARGET_P99_MS
    print(f"target (p99 < {TARGET_P99_MS:g} ms while the pipeline runs): " + ("met" if met else "MISSED"))
    print(
        "srv CPU: the serve process's own CPU use (100 % = one CPU), not its agent and git children's; "
        "latency: from sending the request to the last byte of the answer, client side"
    )
    return met


def loop_report(loop: dict) -> None:
    """What held serve's event loop, over the whole run (set-up, idle and busy phases)."""
    slow = sorted(loop["slow"], key=lambda row: -row[2])
    print(
        f"\nserve's event loop: {loop['callbacks']:,} callbacks, {loop['cpu']:.2f} s CPU; those over "
        f"3 ms CPU or 10 ms wall, by where (wall ≫ CPU: waiting for a CPU or blocked in a system call)"
    )
    print(f"  {'n':>5} {'CPU ms':>8} {'wall ms':>8} {'max CPU':>8} {'max wall':>8}  where")
    for where, count, cpu, wall, max_cpu, max_wall in slow[:12]:
        print(
            f"  {count:5} {cpu * 1000:8.1f} {wall * 1000:8.1f} {max_cpu * 1000:8.1f} {max_wall * 1000:8.1f}  "
            f"{where[:90]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server where databases may be created (default: embedded)")
    parser.add_argument("--protocols", type=int, default=8, help="protocol runs, one project each")
    parser.add_argument("--steps", type=int, default=6, help="steps per run")
    parser.add_argument("--concurrency", type=int, default=4, help="the worker's concurrency")
    parser.add_argument("--clients", type=int, default=4, help="polling connections")
    parser.add_argument("--pause", type=float, default=0.01, help="seconds between a connection's reads")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of reads before the pipeline")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 runs × 2 steps, 1 s idle")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument(
        "--loop-report", action="store_true", help="time serve's event-loop callbacks (bench/loop_probe.py)"
    )
    args = parser.parse_args()
    if args.quick:
        args.protocols, args.steps, args.idle = 2, 2, 1.0
    from app.store.scratch import migrated_database

    quiet_logs()
    scratch = Path(tempfile.mkdtemp(prefix="tg-serveload-"))
    os.chmod(scratch, 0o755)  # the embedded server, and agents, may run as another user
    try:
        with migrated_database(args.database_url, f"tg_serveload_{os.getpid()}", scratch) as (url, where):
            root = scratch / "work"
            root.mkdir()
            root.chmod(0o755)
            token = "bench-" + secrets.token_hex(16)
            idle, busy, pipeline = asyncio.run(measure(args, url, root, token))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not idle.latencies_ms or not busy.latencies_ms or idle.errors or busy.errors:
        report(args, idle, busy, pipeline, where)
        print("FAILED: some reads failed (see the table)")
        sys.exit(1)
    met = report(args, idle, busy, pipeline, where)
    sys.exit(1 if args.fail_on_miss and not met else 0)


if __name__ == "__main__":
    main()
