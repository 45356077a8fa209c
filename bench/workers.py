"""The step pipeline on 1, 2 and 4 worker processes, each on a tree of its own, against one PostgreSQL,
and what making the branch travel costs per step.

Per worker count N (rounds interleaved: 1, 2, 4, 1, 2, 4, ...): `--protocols` protocols of `--steps`
steps, each in its own project registered by git URL (a local bare origin), run by N
`tasksgodzilla worker` processes, each with its own data dir and projects root, running
bench/instant_agent.sh through the `command` engine (real git: clones, worktrees, commits, bundles,
pushes). The projects are set up first; the clock runs from the first `start_protocol` to the last
run `completed`. steps/s is the median over rounds; the scaling ratio divides it by the 1-worker rate
of the same run.

Travel cost per step: the size of each step's bundle (`branch_bundles`), and the time to make one
(`git bundle create` on the run's own commits, GitRepository.bundle) and to insert it (a bytea of
that size into a temporary table), against the per-step wall time of the 1-worker pipeline.

    .venv/bin/python bench/workers.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/workers.py --quick          # smoke run

Without `--database-url` an embedded PostgreSQL runs in a temporary folder.
"""

# ruff: noqa: E402 - the imports follow the sys.path fix below

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/queue.py shadows the standard library's `queue` when this folder is on the import path.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import psycopg

from app.config import Settings
from app.git import GitRepository
from app.jobs.runtime import open_runtime
from app.logs import configure_logging
from app.services import planning, projects
from app.store.database import with_driver
from app.store.scratch import migrated_database

AGENT = ROOT / "bench" / "instant_agent.sh"
CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"
WAIT_SECONDS = 600.0


def settings_for(tree: Path) -> Settings:
    return Settings(
        data_dir=tree / "data",
        git_allow_local_remotes=True,
        command_agent=["/bin/sh", str(AGENT)],
        planning_engine="command",
        execution_engine="command",
        qa_engine="command",
        agent_env_passthrough=["PATH", "HOME", "AGENT_PLAN_STEPS"],
        migrate_on_start=False,
        log_level="WARNING",
    )


def environment(tree: Path, url: str, steps: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    env |= {
        "TASKSGODZILLA_DATABASE_URL": url,
        "TASKSGODZILLA_DATA_DIR": str(tree / "data"),
        "TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES": "true",
        "TASKSGODZILLA_COMMAND_AGENT": f'["/bin/sh", "{AGENT}"]',
        "TASKSGODZILLA_PLANNING_ENGINE": "command",
        "TASKSGODZILLA_EXECUTION_ENGINE": "command",
        "TASKSGODZILLA_QA_ENGINE": "command",
        "TASKSGODZILLA_AGENT_ENV_PASSTHROUGH": "PATH,HOME,AGENT_PLAN_STEPS",
        "TASKSGODZILLA_MIGRATE_ON_START": "false",
        "TASKSGODZILLA_LOG_LEVEL": "WARNING",
        "AGENT_PLAN_STEPS": str(steps),
    }
    return env


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_origin(where: Path) -> Path:
    """A bare origin with one commit on main."""
    origin, seed = where / "origin.git", where / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git("clone", "--quiet", str(origin), str(seed))
    (seed / "README.md").write_text("bench\n")
    git("add", "-A", cwd=seed)
    git("-c", "user.name=Bench", "-c", "user.email=bench@example.test", "commit", "-qm", "init", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=seed)
    shutil.rmtree(seed)
    return origin


async def statuses(url: str, sql: str, ids: list[int]) -> list[str]:
    async with await psycopg.AsyncConnection.connect(with_driver(url, None)) as conn:
        rows = await (await conn.execute(sql, (ids,))).fetchall()
    return [row[0] for row in rows]


async def wait_all(url: str, sql: str, ids: list[int], wanted: str, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = await statuses(url, sql, ids)
        if len(found) == len(ids) and all(status == wanted for status in found):
            return
        bad = [s for s in found if s in ("failed", "blocked", "cancelled")]
        if bad:
            raise SystemExit(f"{what}: {bad[0]} (see the worker logs)")
        await asyncio.sleep(0.02)
    raise SystemExit(f"{what}: not done in {WAIT_SECONDS:.0f} s")


def start_worker(base: Path, label: str, k: int, url: str, steps: int) -> subprocess.Popen[bytes]:
    """`tasksgodzilla worker` on a tree of its own (data dir, projects root), logging beside it."""
    tree = base / f"worker-{k}"
    tree.mkdir()
    log = (base / f"worker-{k}.log").open("ab")
    command = [CLI, "worker", "--name", f"{label}-{k}"]
    return subprocess.Popen(command, env=environment(tree, url, steps), stdout=log, stderr=log)


PROJECT_STATUS = "SELECT status FROM projects WHERE id = ANY(%s)"
RUN_STATUS = "SELECT status FROM protocol_runs WHERE id = ANY(%s)"


async def one_measure(url: str, scratch: Path, label: str, workers: int, args: argparse.Namespace) -> float:
    """steps/s of `args.protocols` protocols run by `workers` worker processes on trees of their own."""
    base = scratch / label
    base.mkdir(parents=True)
    os.chmod(base, 0o755)  # agents may run as another user (the service as root)
    procs = [start_worker(base, label, k, url, args.steps) for k in range(workers)]
    here = base / "here"
    try:
        async with open_runtime(settings_for(here), url, environ=environment(here, url, args.steps)) as (
            _,
            svc,
        ):
            project_ids, run_ids = [], []
            for i in range(args.protocols):
                origin = make_origin(base / f"repo-{i}")
                project = await projects.register_project(
                    svc, name=f"{label}-p{i}", git_url=f"file://{origin}"
                )
                project_ids.append(project.id)
            await wait_all(
                url, "SELECT status FROM projects WHERE id = ANY(%s)", project_ids, "ready", "setup"
            )
            for project_id in project_ids:
                run = await planning.create_protocol(svc, project_id, title="Bench task")
                run_ids.append(run.id)
            started = time.perf_counter()
            for run_id in run_ids:
                await planning.start_protocol(svc, run_id)
            await wait_all(
                url, "SELECT status FROM protocol_runs WHERE id = ANY(%s)", run_ids, "completed", label
            )
            elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    return args.protocols * args.steps / elapsed


async def travel_cost(url: str, scratch: Path) -> tuple[float, float, float]:
    """Per step bundle: mean bytes, mean ms to make it (git), mean ms to insert it; on the 1-worker runs."""
    async with await psycopg.AsyncConnection.connect(with_driver(url, None), autocommit=True) as conn:
        rows = await (
            await conn.execute(
                "SELECT p.name, b.commit_sha, b.since_sha, b.bundle FROM branch_bundles b "
                "JOIN protocol_runs r ON r.id = b.protocol_run_id JOIN projects p ON p.id = r.project_id "
                "WHERE p.name LIKE 'w1-%%' AND b.since_sha IN (SELECT commit_sha FROM branch_bundles) "
                "ORDER BY b.id"
            )
        ).fetchall()
        await conn.execute("CREATE TEMPORARY TABLE travel_probe (data bytea)")
        insert_ms = []
        for *_, data in rows:
            started = time.perf_counter()
            await conn.execute("INSERT INTO travel_probe VALUES (%s)", (data,))
            insert_ms.append((time.perf_counter() - started) * 1000)
    make_ms = []
    for name, sha, since, _ in rows:
        label = name.rsplit("-p", 1)[0]
        clone = next((scratch / label).glob(f"worker-*/data/projects/{name}/repo"), None)
        if clone is None:
            continue
        repo = GitRepository(clone, timeout=60, author_name="Bench", author_email="bench@example.test")
        started = time.perf_counter()
        await repo.bundle(sha, since)
        make_ms.append((time.perf_counter() - started) * 1000)
    size = statistics.mean(len(row[3]) for row in rows) if rows else 0.0
    return size, statistics.mean(make_ms or [0.0]), statistics.mean(insert_ms or [0.0])


async def main_async(args: argparse.Namespace, url: str, scratch: Path) -> None:
    counts = (1, 2) if args.quick else (1, 2, 4)
    rates: dict[int, list[float]] = {n: [] for n in counts}
    for round_ in range(args.rounds):
        for n in counts:
            rates[n].append(await one_measure(url, scratch, f"w{n}-r{round_}", n, args))
    size, make_ms, insert_ms = await travel_cost(url, scratch)
    base = statistics.median(rates[1])
    print(f"\n{args.protocols} protocols x {args.steps} steps, {args.rounds} rounds, median steps/s")
    print(f"{'workers':>8} {'steps/s':>9} {'ratio':>7}   rounds")
    for n in counts:
        rate = statistics.median(rates[n])
        print(f"{n:>8} {rate:>9.2f} {rate / base:>7.2f}   {', '.join(f'{r:.2f}' for r in rates[n])}")
    step_ms = 1000 / base
    travel_ms = make_ms + insert_ms
    print(
        f"\ntravel per step: {size / 1024:.1f} KiB bundle, {make_ms:.1f} ms git bundle"
        f" + {insert_ms:.1f} ms insert = {travel_ms:.1f} ms,"
        f" {travel_ms / step_ms:.1%} of a step's {step_ms:.0f} ms at 1 worker"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a server whose user may create databases")
    parser.add_argument("--protocols", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 and 2 workers, tiny")
    args = parser.parse_args()
    if args.quick:
        args.protocols, args.steps, args.rounds = 2, 2, 1
    configure_logging(Settings(log_level="WARNING"))
    scratch = Path(tempfile.mkdtemp(prefix="tg-bench-workers-"))
    os.chmod(scratch, 0o755)  # the embedded server, and agents, may run as another user
    try:
        with migrated_database(args.database_url, f"tg_workers_{os.getpid()}", scratch) as (url, where):
            print(f"database: {where}")
            asyncio.run(main_async(args, url, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
