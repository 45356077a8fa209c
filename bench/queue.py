"""How fast work moves: the raw Procrastinate queue, our step pipeline on it, and enqueue-to-start latency.

Everything is measured in one run, on one fresh database (created here, dropped at the end):

1. Baseline: a no-op async task; `--jobs` jobs deferred in batches, then drained by one worker at our
   concurrency, LISTEN/NOTIFY on, through the same kind of connection pool as ours. jobs/s, median
   of `--rounds`.
2. Our pipeline: `--protocols` protocols of `--steps` steps, each in its own project (a local bare
   origin + clone), run by one worker of ours (`open_runtime` + `start_worker`, default settings but
   for a local pipeline): plan job, then per step an execution job and a QA job, then the publish
   job; real worktrees, commits and pushes. steps/s from the first `start_protocol` to the last run
   `completed` (planning and publishing included; a step = its execution job + its QA job).
   Variants, same shape:
   (a) the `command` engine running bench/instant_agent.sh (sh, answers at once: 2 runs a step
       + planning);
   (b) an in-process Engine object instead (no agent process; git still real);
   (c) as (a), with asyncio's PidfdChildWatcher instead of Python 3.11's default ThreadedChildWatcher
       (one thread started per child process): a what-if, an asyncio setting, no app code changed;
   (d) as (a) at concurrency 1 (`--serial-protocols`), git and agent wall time measured per call so
       they can be subtracted exactly: what is left per step is our orchestration (database, queue
       hops, Python); "orchestration only" is the step rate that alone would allow.
   The floor (f), measured in the same rounds: per step, only what a step cannot avoid, with no
   orchestration: two queue hops (two Procrastinate jobs on a bare app, the second deferred by the
   first, the next step's first by the second), two spawns of the same instant agent (execution,
   then QA), and the git work of the change (`git add`, `git commit`, `git push` to the local bare
   origin); same projects, protocols, steps and concurrency. Each pipeline variant's rate is given as
   a ratio of the floor's (goal: (a) >= 0.7x), and (a)'s per-step counts (git commands by subcommand,
   SQL statements and transactions, Procrastinate's queries, worker CPU) beside their goals.
3. Enqueue-to-start latency: jobs deferred one at a time to an idle worker, from just before
   `defer_async` to the first line of the task; on a bare Procrastinate app, and on our worker
   (deferred with lock + queueing lock, as app/jobs/queue.py does). p50 and p99.

    .venv/bin/python bench/queue.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/queue.py --quick                        # smoke run, < 20 s
    .venv/bin/python bench/queue.py --profile /tmp/pipeline.prof   # + cProfile of variant (a)

Without `--database-url` an embedded PostgreSQL runs in a temporary folder. Rounds are interleaved
(raw, a, b, c, d, raw, a, ...) so a busy moment of the machine hits every measure alike; each measure
starts after a VACUUM ANALYZE (finished jobs otherwise slow Procrastinate's fetch down, see `vacuum`).
"""

# ruff: noqa: E402 - the imports follow the sys.path fix below

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `queue`, which asyncio's thread pool imports: run as
# a script, its own folder must not be on the import path (nor the current one, when it is this folder).
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse
import asyncio
import collections
import contextlib
import cProfile
import functools
import logging
import operator
import os
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import procrastinate
import psycopg
import psycopg_pool
from psycopg import sql
from sqlalchemy import event

from app.config import Settings
from app.config_environment import agent_environment
from app.domain.agents import AgentRequest, AgentResult
from app.domain.records import AgentRunStatus, Stage
from app.domain.usage import TokenUsage
from app.engines.base import Engine
from app.engines.probe import EngineCheck
from app.engines.registry import build_engines
from app.git.runner import GitResult, GitRunner
from app.jobs.runtime import open_runtime, start_worker, stop_worker
from app.logs import configure_logging
from app.services import planning, projects
from app.store.database import with_driver
from app.store.jobs import QUEUE

AGENT = HERE / "instant_agent.sh"
RAW_QUEUE = "bench_raw"
FLOOR_QUEUE = "bench_floor"
LATENCY_QUEUE = "bench_latency"
PROBE_TASK = "bench_probe_job"
TARGET_RATIO = 0.70  # pipeline (a) steps/s over the floor's
# Goals per step of pipeline (a) (issue 18): what it may cost beyond the floor's work.
GOALS = {"git commands": 7.0, "SQL statements": 15.0, "SQL transactions": 5.0, "worker CPU ms": 30.0}
TARGET_P99_MS = 50.0
WAIT_SECONDS = 300.0
POLL_SECONDS = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MEASURES = (
    "raw queue: no-op jobs drained",
    "floor (f): git add/commit/push + 2 agents + 2 hops",
    "pipeline (a): command agent + git",
    "pipeline (a): command agent + git, jobs",
    "pipeline (b): in-process agent + git",
    "pipeline (c): as (a), pidfd child watcher",
    "pipeline (d): orchestration only",
    "latency p50, raw worker",
    "latency p99, raw worker",
    "latency p50, our worker",
    "latency p99, our worker",
)


# --- the database ------------------------------------------------------------------------------------


def bench_database(
    server_url: str | None, scratch: Path
) -> contextlib.AbstractContextManager[tuple[str, str]]:
    """A fresh migrated database `tg_bench_<pid>` (dropped after), and where it is."""
    from app.store.scratch import migrated_database

    return migrated_database(server_url, f"tg_bench_{os.getpid()}", scratch)


async def vacuum(url: str) -> None:
    """Each measure starts on tables without the dead rows of the one before.

    Without it the queue slows down as finished jobs pile up faster than autovacuum runs: Procrastinate's
    fetch query walks the dead index entries of every job that went through `todo`.
    """
    async with await psycopg.AsyncConnection.connect(with_driver(url, None), autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE")


def job_pool(url: str, concurrency: int) -> psycopg_pool.AsyncConnectionPool:
    """The pool open_runtime gives Procrastinate, so the baseline pays for what we pay for."""
    return psycopg_pool.AsyncConnectionPool(
        with_driver(url, None),
        min_size=1,
        max_size=max(2, concurrency + 2),
        open=False,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
    )


@contextlib.asynccontextmanager
async def bare_worker(
    url: str, concurrency: int, queue: str
) -> AsyncIterator[tuple[procrastinate.App, Callable[[], None]]]:
    """A Procrastinate app with nothing of ours, and how to start its worker on `queue` (stopped after)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=with_driver(url, None)))
    pool = job_pool(url, concurrency)
    await pool.open()
    try:
        async with app.open_async(pool=pool):
            worker: asyncio.Task[None] | None = None

            def start() -> None:
                nonlocal worker
                worker = asyncio.create_task(
                    app.run_worker_async(
                        queues=[queue],
                        concurrency=concurrency,
                        install_signal_handlers=False,
                        listen_notify=True,
                        wait=True,
                    )
                )

            try:
                yield app, start
            finally:
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
    finally:
        await pool.close()


# --- counting and CPU accounting -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """CPU seconds: this process, its reaped children (git, agents), the database's server processes."""

    own: float
    children: float
    postgres: float | None

    @classmethod
    def now(cls, database: str) -> Cpu:
        t = os.times()
        return cls(t.user + t.system, t.children_user + t.children_system, postgres_cpu(database))

    def __sub__(self, other: Cpu) -> Cpu:
        pg = None if self.postgres is None or other.postgres is None else self.postgres - other.postgres
        return Cpu(self.own - other.own, self.children - other.children, pg)

    def __add__(self, other: Cpu) -> Cpu:
        pg = None if self.postgres is None or other.postgres is None else self.postgres + other.postgres
        return Cpu(self.own + other.own, self.children + other.children, pg)


def postgres_cpu(database: str) -> float | None:
    """CPU of the local server processes serving `database` (their title names it); None if none."""
    total, found = 0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
            if not title.startswith(b"postgres") or f" {database} ".encode() not in title:
                continue
            fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        found = True
    return total / CLOCK_TICKS if found else None


@dataclass
class Calls:
    """How many calls of one kind, their summed wall time, and how many of each name."""

    count: int = 0
    seconds: float = 0.0
    by_name: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds_by_name: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))

    def add(self, name: str, seconds: float = 0.0) -> None:
        self.count += 1
        self.seconds += seconds
        self.by_name[name] += 1
        self.seconds_by_name[name] += seconds

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def __add__(self, other: Calls) -> Calls:
        total = collections.defaultdict(float, self.seconds_by_name)
        for name, seconds in other.seconds_by_name.items():
            total[name] += seconds
        return Calls(
            self.count + other.count, self.seconds + other.seconds, self.by_name + other.by_name, total
        )

    def mean_ms(self, name: str) -> float:
        return 1000 * self.seconds_by_name[name] / max(1, self.by_name[name])


@dataclass
class Counters:
    git: Calls = field(default_factory=Calls)
    agent: Calls = field(default_factory=Calls)
    spawns: Calls = field(default_factory=Calls)
    sql_statements: Calls = field(default_factory=Calls)
    sql_transactions: Calls = field(default_factory=Calls)
    job_queries: Calls = field(default_factory=Calls)

    def all(self) -> tuple[Calls, ...]:
        return (
            self.git,
            self.agent,
            self.spawns,
            self.sql_statements,
            self.sql_transactions,
            self.job_queries,
        )

    def reset(self) -> None:
        for calls in self.all():
            calls.reset()

    def __add__(self, other: Counters) -> Counters:
        return Counters(*(mine + theirs for mine, theirs in zip(self.all(), other.all(), strict=True)))


class TimedAgent:
    """Wraps an engine and times each run: the spawn, the agent, reading its answer."""

    def __init__(self, inner: Engine, calls: Calls) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = calls

    async def run(self, request: AgentRequest) -> AgentResult:
        started = time.perf_counter()
        try:
            return await self.inner.run(request)
        finally:
            self.calls.add(request.stage.value, time.perf_counter() - started)

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        return await self.inner.check(workdir)


@contextlib.contextmanager
def timed_git(calls: Calls) -> Iterator[None]:
    """Count and time every git command app/git runs (patched on the class for this block only)."""
    original = GitRunner.run

    async def run(self: GitRunner, args: Any, **kwargs: Any) -> GitResult:
        started = time.perf_counter()
        try:
            return await original(self, args, **kwargs)
        finally:
            calls.add(str(args[0]), time.perf_counter() - started)

    GitRunner.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        GitRunner.run = original  # type: ignore[method-assign]


@contextlib.contextmanager
def timed_spawns(calls: Calls) -> Iterator[None]:
    """Time what starting a child process (git, an agent) does synchronously on the event loop's thread:
    fork + exec (`Popen._execute_child`), then the child watcher's set-up (Python 3.11's default starts
    a thread per child and waits for it to run). Nothing else runs meanwhile."""
    targets = [
        (subprocess.Popen, "_execute_child"),
        (asyncio.ThreadedChildWatcher, "add_child_handler"),
        (asyncio.PidfdChildWatcher, "add_child_handler"),
    ]
    originals = [getattr(owner, name) for owner, name in targets]

    def timed(original: Callable[..., Any], name: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                calls.add(name, time.perf_counter() - started)

        return run

    for (owner, name), original in zip(targets, originals, strict=True):
        setattr(owner, name, timed(original, name))
    try:
        yield
    finally:
        for (owner, name), original in zip(targets, originals, strict=True):
            setattr(owner, name, original)


def count_job_queries(connector: Any, calls: Calls) -> None:
    """Count the queries Procrastinate sends (defer, fetch, finish, locks...) through this connector."""
    for name in ("execute_query_async", "execute_query_one_async", "execute_query_all_async"):
        original = getattr(connector, name)

        async def counted(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            calls.add("query")
            return await _original(*args, **kwargs)

        setattr(connector, name, counted)


def unit_of(conn: Any) -> str:
    """ "read" for a connection in autocommit (Database.read: no BEGIN/COMMIT), else "transaction"."""
    return "read" if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT" else "transaction"


@contextlib.contextmanager
def child_watcher(kind: str) -> Iterator[None]:
    """Python 3.11's default (a thread per child) or the pidfd one (3.12's default where available)."""
    if kind == "threaded":
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # child watchers are deprecated from 3.12
        previous = asyncio.get_child_watcher()
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(previous)


# --- 1. the raw queue -------------------------------------------------------------------------------------


async def raw_throughput(url: str, jobs: int, batch: int, concurrency: int) -> float:
    """jobs/s of one worker draining `jobs` no-op jobs deferred beforehand."""
    async with bare_worker(url, concurrency, RAW_QUEUE) as (app, start_bare_worker):
        done = 0
        finished = asyncio.Event()

        @app.task(name="bench_noop_job", queue=RAW_QUEUE)
        async def noop(i: int) -> None:
            nonlocal done
            done += 1
            if done == jobs:
                finished.set()

        for start in range(0, jobs, batch):
            await noop.batch_defer_async(*({"i": i} for i in range(start, min(jobs, start + batch))))
        started = time.perf_counter()
        start_bare_worker()
        async with asyncio.timeout(WAIT_SECONDS):
            await finished.wait()
        return jobs / (time.perf_counter() - started)


# --- 2. the pipeline ----------------------------------------------------------------------------------------


class InProcessAgent:
    """An engine answering in Python: a plan of `steps` steps, a line appended per step, QA passes."""

    name = "command"

    def __init__(self, steps: int) -> None:
        self.steps = steps

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        return EngineCheck("ok", "(in process)", version="bench")

    async def run(self, request: AgentRequest) -> AgentResult:
        structured: dict[str, Any] | None = None
        if request.stage is Stage.PLANNING:
            files = [
                {"filename": f"{i:02d}-part-{i}.md", "content": f"# Part {i}\n\n## Goal\nWrite part {i}.\n"}
                for i in range(1, self.steps + 1)
            ]
            structured = {"plan_md": "# Plan\n", "context_md": "# Context\n", "log_md": "# Log\n"}
            structured["step_files"] = files
        elif request.stage is Stage.EXECUTION:
            # Blocking, as an agent editing a file would be; a few microseconds.
            with open(request.workdir / "bench-steps.txt", "a") as out:  # noqa: ASYNC230
                out.write(f"step done at {time.time_ns()}\n")
        elif request.stage is Stage.QA:
            structured = {"verdict": "pass", "summary": "ok", "findings": []}
        return AgentResult(
            engine=self.name,
            model=request.model,
            status=AgentRunStatus.SUCCEEDED,
            exit_code=0,
            final_message="done",
            structured_output=structured,
            usage=TokenUsage(input_tokens=100, output_tokens=20),
        )


@dataclass
class PipelineRun:
    label: str
    protocols: int
    steps: int
    concurrency: int
    seconds: float
    counters: Counters
    cpu: Cpu

    @property
    def total_steps(self) -> int:
        return self.protocols * self.steps

    @property
    def jobs(self) -> int:
        return self.protocols * (2 * self.steps + 2)  # plan; execution + QA per step; publish

    @property
    def steps_per_second(self) -> float:
        return self.total_steps / self.seconds

    @property
    def orchestration_seconds(self) -> float:
        """Wall time minus git and agent time: exact at concurrency 1 only, where nothing overlaps."""
        return self.seconds - self.counters.git.seconds - self.counters.agent.seconds

    def per_step(self, amount: float, scale: float = 1000.0) -> float:
        return amount * scale / self.total_steps

    def __add__(self, other: PipelineRun) -> PipelineRun:
        """Two rounds of one variant as one run (for per-step figures)."""
        return PipelineRun(
            self.label,
            self.protocols + other.protocols,
            self.steps,
            self.concurrency,
            self.seconds + other.seconds,
            self.counters + other.counters,
            self.cpu + other.cpu,
        )


def make_repos(root: Path) -> Path:
    """A bare origin with one commit on main, and a clone of it: the project's path."""
    origin, local = root / "origin.git", root / "local"

    def git(*args: str, cwd: Path | None = None) -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git("clone", "--quiet", str(origin), str(local))
    (local / "README.md").write_text("bench\n")
    git("add", "-A", cwd=local)
    git("-c", "user.name=Bench", "-c", "user.email=bench@example.test", "commit", "-qm", "init", cwd=local)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=local)
    return local


def pipeline_settings(root: Path, concurrency: int) -> Settings:
    """The defaults, but for what a local pipeline with the instant agent needs."""
    return Settings(
        data_dir=root / "data",
        git_allow_local_remotes=True,
        local_path_roots=[root],  # the benchmark's repositories live beside its data dir
        command_agent=["/bin/sh", str(AGENT)],
        planning_engine="command",
        execution_engine="command",
        qa_engine="command",
        agent_env_passthrough=["PATH", "HOME", "AGENT_PLAN_STEPS"],
        worker_concurrency=concurrency,
    )


async def wait_all(
    poller: psycopg.AsyncConnection[Any], table: str, ids: list[int], goal: str, *, has_error: bool = True
) -> None:
    """Until every row is `goal`, polled on a connection of its own (not counted as ours)."""
    error = sql.Identifier("last_error") if has_error else sql.SQL("NULL")
    query = sql.SQL("SELECT status, {} FROM {} WHERE id = ANY(%s)").format(error, sql.Identifier(table))
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = await (await poller.execute(query, (ids,))).fetchall()
        counts = collections.Counter(status for status, _ in rows)
        if counts[goal] == len(ids):
            return
        if counts["blocked"] or counts["failed"]:
            errors = [error for status, error in rows if status in ("blocked", "failed")]
            raise SystemExit(f"{table}: not all {goal}: {dict(counts)}; {errors[:3]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{table}: timed out waiting for {goal}: {dict(counts)}")
        await asyncio.sleep(POLL_SECONDS)


def engines_for(
    settings: Settings, environ: Mapping[str, str], agent: str, steps: int, calls: Calls
) -> dict[str, Engine]:
    inner: Engine
    if agent == "in-process":
        inner = InProcessAgent(steps)
    else:
        base_env = agent_environment(settings, environ)
        inner = build_engines(settings, base_env=base_env)["command"]
    return {"command": TimedAgent(inner, calls)}


async def run_pipeline(
    url: str,
    root: Path,
    *,
    label: str,
    protocols: int,
    steps: int,
    concurrency: int,
    agent: str = "command",
    watcher: str = "threaded",
    profile: cProfile.Profile | None = None,
) -> PipelineRun:
    """Register `protocols` projects, then time their protocols from start to completed."""
    root.mkdir(parents=True)  # noqa: ASYNC240 - set-up, before the clock
    settings = pipeline_settings(root, concurrency)
    environ = {**os.environ, "AGENT_PLAN_STEPS": str(steps)}
    counters = Counters()
    engines = engines_for(settings, environ, agent, steps, counters.agent)
    paths = [make_repos(root / f"repo-{i}") for i in range(protocols)]
    database = urlsplit(url).path.lstrip("/")
    poller = await psycopg.AsyncConnection.connect(with_driver(url, None), autocommit=True)
    try:
        with timed_git(counters.git), timed_spawns(counters.spawns), child_watcher(watcher):
            async with open_runtime(settings, url, environ=environ, engines=engines) as (app, svc):
                engine = svc.database.engine.sync_engine
                event.listen(engine, "before_cursor_execute", lambda *_: counters.sql_statements.add("sql"))
                event.listen(engine, "begin", lambda conn: counters.sql_transactions.add(unit_of(conn)))
                count_job_queries(app.connector, counters.job_queries)
                worker = start_worker(app, svc, name=f"bench-{label}")
                try:
                    registered = [
                        await projects.register_project(
                            svc, name=f"bench-{root.name}-{i}", local_path=str(path)
                        )
                        for i, path in enumerate(paths)
                    ]
                    await wait_all(poller, "projects", [p.id for p in registered], "ready", has_error=False)
                    runs = [
                        await planning.create_protocol(svc, p.id, title=f"Bench run {i}")
                        for i, p in enumerate(registered)
                    ]
                    counters.reset()
                    before = Cpu.now(database)
                    if profile is not None:
                        profile.enable()
                    started = time.perf_counter()
                    for run in runs:
                        await planning.start_protocol(svc, run.id)
                    await wait_all(poller, "protocol_runs", [r.id for r in runs], "completed")
                    seconds = time.perf_counter() - started
                    if profile is not None:
                        profile.disable()
                    cpu = Cpu.now(database) - before
                finally:
                    await stop_worker(worker)
    finally:
        await poller.close()
    return PipelineRun(label, protocols, steps, concurrency, seconds, counters, cpu)


# --- the floor ----------------------------------------------------------------------------------------


async def run_floor(url: str, root: Path, *, protocols: int, steps: int, concurrency: int) -> PipelineRun:
    """Per step, what a step cannot avoid and nothing else: two queue hops (an execution job that
    defers a QA job, which defers the next step's execution job), the instant agent spawned in each,
    and `git add`, `git commit`, `git push` of the execution agent's change; chains run side by side."""
    root.mkdir(parents=True)  # noqa: ASYNC240 - set-up, before the clock
    paths = [make_repos(root / f"repo-{i}") for i in range(protocols)]
    database = urlsplit(url).path.lstrip("/")
    counters = Counters()
    base = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(root), "LC_ALL": "C"}
    git_env = {**base, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.test"]
    failures: list[BaseException] = []
    remaining = protocols
    finished = asyncio.Event()

    async def spawn(argv: list[str], cwd: Path, env: dict[str, str], calls: Calls, name: str) -> None:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        calls.add(name, time.perf_counter() - started)
        if process.returncode != 0:
            raise RuntimeError(f"{name} exited {process.returncode}: {stderr.decode(errors='replace')}")

    async def agent(cwd: Path, stage: str) -> None:
        env = {**base, "AGENT_STAGE": stage}
        await spawn(["/bin/sh", str(AGENT)], cwd, env, counters.agent, stage)

    async def git(cwd: Path, *args: str) -> None:
        command = next(a for a in args if not a.startswith("-") and "=" not in a)
        await spawn(["git", *args], cwd, git_env, counters.git, command)

    def failed(error: BaseException) -> None:
        failures.append(error)
        finished.set()

    with timed_spawns(counters.spawns):
        async with bare_worker(url, concurrency, FLOOR_QUEUE) as (app, start_bare_worker):
            count_job_queries(app.connector, counters.job_queries)

            @app.task(name="bench_floor_execute", queue=FLOOR_QUEUE)
            async def execute(chain: int, step: int) -> None:
                try:
                    cwd = paths[chain]
                    await agent(cwd, "execution")
                    await git(cwd, "add", "--all")
                    await git(cwd, *identity, "commit", "--quiet", "-m", f"step {step}")
                    await git(cwd, "push", "--quiet", "origin", f"HEAD:refs/heads/floor-{chain}")
                    await qa.defer_async(chain=chain, step=step)
                except Exception as exc:
                    failed(exc)

            @app.task(name="bench_floor_qa", queue=FLOOR_QUEUE)
            async def qa(chain: int, step: int) -> None:
                nonlocal remaining
                try:
                    await agent(paths[chain], "qa")
                    if step < steps:
                        await execute.defer_async(chain=chain, step=step + 1)
                        return
                    remaining -= 1
                    if remaining == 0:
                        finished.set()
                except Exception as exc:
                    failed(exc)

            start_bare_worker()
            await asyncio.sleep(0.3)  # the worker is up, listening, idle
            counters.reset()
            before = Cpu.now(database)
            started = time.perf_counter()
            for chain in range(protocols):
                await execute.defer_async(chain=chain, step=1)
            async with asyncio.timeout(WAIT_SECONDS):
                await finished.wait()
            seconds = time.perf_counter() - started
            cpu = Cpu.now(database) - before
    if failures:
        raise SystemExit(f"floor: {failures[0]!r}")
    return PipelineRun("f", protocols, steps, concurrency, seconds, counters, cpu)


# --- 3. latency ----------------------------------------------------------------------------------------


async def probe_latencies(
    app: procrastinate.App, count: int, *, locked: bool, queue: str = LATENCY_QUEUE
) -> list[float]:
    """Milliseconds from just before each defer to the first line of its task, one job at a time."""
    started: asyncio.Queue[float] = asyncio.Queue()

    @app.task(name=PROBE_TASK, queue=queue)
    async def probe(i: int) -> None:
        started.put_nowait(time.perf_counter())

    await asyncio.sleep(0.3)  # the worker is up, listening, idle
    samples = []
    for i in range(count):
        task = (
            app.configure_task(PROBE_TASK, lock=f"probe:{i}", queueing_lock=f"probe:{i}") if locked else probe
        )
        before = time.perf_counter()
        await task.defer_async(i=i)
        async with asyncio.timeout(WAIT_SECONDS):
            first_line = await started.get()
        samples.append((first_line - before) * 1000)
        await asyncio.sleep(0.01)  # the worker finishes the job and goes back to waiting
    return samples


async def raw_latency(url: str, count: int, concurrency: int) -> list[float]:
    async with bare_worker(url, concurrency, LATENCY_QUEUE) as (app, start_bare_worker):
        start_bare_worker()
        return await probe_latencies(app, count, locked=False)


async def our_latency(url: str, root: Path, count: int, concurrency: int) -> list[float]:
    """The same probe on our runtime's app and worker, its periodic scans included."""
    settings = pipeline_settings(root, concurrency)
    async with open_runtime(settings, url, environ=dict(os.environ)) as (app, svc):
        worker = start_worker(app, svc, name="bench-latency")
        try:
            # On the queue our job worker serves (the duties have a worker and a queue of their own).
            return await probe_latencies(app, count, locked=True, queue=QUEUE)
        finally:
            await stop_worker(worker)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- reporting -----------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.1f}"


def print_table(header: list[str], rows: list[list[str]], *, text_last: bool = False) -> None:
    """The first column left-aligned, numbers right-aligned; the last one left-aligned if it is text."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate([header, ["-" * w for w in widths], *rows]):
        cells = [f"{row[0]:{widths[0]}}"] + [
            f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        if text_last and n != 1:
            cells[-1] = f"{row[-1]:{widths[-1]}}"
        print("  ".join(cells).rstrip())


def print_breakdown(runs: list[PipelineRun]) -> None:
    """Per step, each variant: where the time goes (planning and publishing shared out over its steps)."""

    def line(name: str, value: Callable[[PipelineRun], float | None]) -> list[str]:
        return [name, *(fmt(value(run)) for run in runs)]

    serial = [run.concurrency == 1 for run in runs]
    rows = [
        line("wall ms", lambda r: r.per_step(r.seconds)),
        line("git commands", lambda r: r.per_step(r.counters.git.count, 1)),
        line("git ms (summed wall)", lambda r: r.per_step(r.counters.git.seconds)),
        line("agent runs", lambda r: r.per_step(r.counters.agent.count, 1)),
        line("agent ms (summed wall)", lambda r: r.per_step(r.counters.agent.seconds)),
        line("  of which starting processes ms", lambda r: r.per_step(r.counters.spawns.seconds)),
        [
            "orchestration ms (wall − git − agent)",
            *(
                fmt(r.per_step(r.orchestration_seconds)) if s else "overlaps"
                for r, s in zip(runs, serial, strict=True)
            ),
        ],
        line("worker process CPU ms", lambda r: r.per_step(r.cpu.own)),
        line("git + agent processes CPU ms", lambda r: r.per_step(r.cpu.children)),
        line(
            "postgres backends CPU ms",
            lambda r: None if r.cpu.postgres is None else r.per_step(r.cpu.postgres),
        ),
        line("SQL statements (SQLAlchemy)", lambda r: r.per_step(r.counters.sql_statements.count, 1)),
        line("SQL transactions (and reads)", lambda r: r.per_step(r.counters.sql_transactions.count, 1)),
        line(
            "  of which autocommit reads",
            lambda r: r.per_step(r.counters.sql_transactions.by_name["read"], 1),
        ),
        line("Procrastinate queries", lambda r: r.per_step(r.counters.job_queries.count, 1)),
    ]
    print("\nper step (planning and publishing shared out over the steps):")
    print_table(["", *(f"({r.label}) c={r.concurrency}" for r in runs)], rows)
    for run in runs[:2]:
        commands = ", ".join(
            f"{name} {n / run.total_steps:.1f}" for name, n in run.counters.git.by_name.most_common()
        )
        print(f"git commands per step in ({run.label}): {commands}")
    for run in runs:
        spawns = run.counters.spawns
        print(
            f"starting one process in ({run.label}): fork + exec {spawns.mean_ms('_execute_child'):.2f} ms, "
            f"child watcher {spawns.mean_ms('add_child_handler'):.2f} ms"
        )
    print(
        "wall = run time / steps; at c=4 jobs overlap, so summed git and agent time can exceed it.\n"
        "starting processes = the event loop blocked in fork + exec and the child watcher's set-up; part\n"
        "of git + agent ms. CPU: os.times() of this process and its reaped children; postgres:\n"
        "/proc of this database's backends (local server only)."
    )


def print_goals(run: PipelineRun, floor: PipelineRun, ratio: float) -> None:
    """Pipeline (a) per step beside the floor's and the goals (issue 18)."""
    figures = {
        "git commands": (
            run.per_step(run.counters.git.count, 1),
            floor.per_step(floor.counters.git.count, 1),
        ),
        "SQL statements": (run.per_step(run.counters.sql_statements.count, 1), 0.0),
        "SQL transactions": (run.per_step(run.counters.sql_transactions.count, 1), 0.0),
        "worker CPU ms": (run.per_step(run.cpu.own), floor.per_step(floor.cpu.own)),
    }
    rows = [["steps/s, ratio to the floor", f"{ratio:.2f}", "1.00", f"≥ {TARGET_RATIO:.1f}",
             "met" if ratio >= TARGET_RATIO else "missed"]]  # fmt: skip
    for name, (value, at_floor) in figures.items():
        goal = GOALS[name]
        rows.append([name, fmt(value), fmt(at_floor), f"≤ {goal:g}", "met" if value <= goal else "missed"])
    print(f"\ngoals per step, pipeline ({run.label}) beside the floor ({floor.label}):")
    print_table(["", f"({run.label})", f"({floor.label})", "goal", ""], rows, text_last=True)
    print(
        "SQL: SQLAlchemy's statements and transactions (an autocommit read counts as one); the queue's own\n"
        f"queries apart: {run.per_step(run.counters.job_queries.count, 1):.1f} per step in ({run.label}), "
        f"{floor.per_step(floor.counters.job_queries.count, 1):.1f} in ({floor.label}). Worker CPU: this "
        "process's CPU time / steps."
    )


PROFILE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spawning processes (fork_exec, child watcher thread)", (
        "fork_exec", "start_new_thread", "_thread.lock", "subprocess.py", "unix_events.py", "threading.py",
        "posix.pipe", "posix.waitpid",
    )),
    ("waiting in epoll (idle)", ("select.epoll", "selectors.py")),
    ("socket send/recv (database I/O)", ("_socket.socket",)),
    ("SQLAlchemy", ("sqlalchemy", "greenlet")),
    ("asyncpg", ("asyncpg",)),
    ("psycopg + Procrastinate", ("psycopg", "procrastinate")),
    ("asyncio event loop", ("asyncio", "_contextvars")),
    ("files and folders (tempdirs, transcripts)", ("posix.", "io.", "_io.", "shutil.py", "tempfile.py")),
    ("logging", ("logging", "structlog")),
    ("pydantic", ("pydantic",)),
    ("app/ (our code itself)", ("/app/",)),
)  # fmt: skip


def print_profile(path: str, run: PipelineRun) -> None:
    """The worker's event-loop time in variant (a), by where it was spent (cProfile's own time)."""
    totals: collections.Counter[str] = collections.Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in pstats.Stats(path).stats.items():  # type: ignore[attr-defined]
        where = f"{filename} {name}"
        group = next((g for g, keys in PROFILE_GROUPS if any(k in where for k in keys)), "other")
        totals[group] += own
    total = sum(totals.values())
    print(
        f"\nworker event loop in round 1 of ({run.label}), under cProfile ({path}; that round's rate above"
        " includes the profiler):"
    )
    rows = [[group, f"{seconds * 1000 / run.total_steps:.1f}", f"{100 * seconds / total:.0f} %"]
            for group, seconds in totals.most_common()]  # fmt: skip
    print_table(["", "ms/step", "share"], rows)


async def measure(args: argparse.Namespace, url: str, where: str, scratch: Path) -> None:
    c = args.concurrency
    profile = cProfile.Profile() if args.profile else None
    raw_rates: list[float] = []
    floors: list[PipelineRun] = []
    variants: dict[str, list[PipelineRun]] = {"a": [], "b": [], "c": [], "d": []}
    for n in range(args.rounds):  # interleaved, so a slow moment of the machine hits every measure alike
        await vacuum(url)
        raw_rates.append(await raw_throughput(url, args.jobs, args.batch, c))
        shape: dict[str, Any] = {"protocols": args.protocols, "steps": args.steps, "concurrency": c}
        await vacuum(url)
        floors.append(await run_floor(url, scratch / f"f{n}", **shape))
        await asyncio.to_thread(shutil.rmtree, scratch / f"f{n}", ignore_errors=True)
        for label, options in (
            ("a", {"profile": profile if n == 0 else None}),
            ("b", {"agent": "in-process"}),
            ("c", {"watcher": "pidfd"}),
            ("d", {"protocols": args.serial_protocols, "concurrency": 1}),
        ):
            await vacuum(url)
            root = scratch / f"{label}{n}"
            run = await run_pipeline(url, root, label=label, **{**shape, **options})
            variants[label].append(run)
            await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)
    if profile is not None:
        profile.dump_stats(args.profile)
    await vacuum(url)
    raw_samples = await raw_latency(url, args.latency_jobs, c)
    our_samples = await our_latency(url, scratch / "latency", args.latency_jobs, c)
    baseline = statistics.median(raw_rates)
    floor_rate = statistics.median(run.steps_per_second for run in floors)
    full, inproc, pidfd, serial = (functools.reduce(operator.add, runs) for runs in variants.values())
    floor = functools.reduce(operator.add, floors)

    def median_rate(label: str) -> float:
        return statistics.median(run.steps_per_second for run in variants[label])

    def vs(rate: float, *, goal: bool = False) -> str:
        ratio = rate / floor_rate
        said = f"{ratio:.2f} × floor"
        if goal:
            said += f" ({'meets' if ratio >= TARGET_RATIO else 'below'} goal ≥ {TARGET_RATIO:.1f})"
        return said

    def p99(samples: list[float]) -> str:
        met = percentile(samples, 0.99) < TARGET_P99_MS
        return f"target < {TARGET_P99_MS:g} ms: {'met' if met else 'MISSED'}"

    orchestration_rate = statistics.median(r.total_steps / r.orchestration_seconds for r in variants["d"])
    jobs_rate = statistics.median(r.jobs / r.seconds for r in variants["a"])
    values: list[tuple[float, str, str]] = [
        (baseline, "jobs/s", "reference: no-op jobs"),
        (floor_rate, "steps/s", "baseline (1.00 × floor)"),
        (median_rate("a"), "steps/s", vs(median_rate("a"), goal=True)),
        (jobs_rate, "jobs/s", f"{jobs_rate / baseline:.3f} × raw queue"),
        (median_rate("b"), "steps/s", vs(median_rate("b"))),
        (median_rate("c"), "steps/s", f"{vs(median_rate('c'))}; what-if"),
        (orchestration_rate, "steps/s", f"{vs(orchestration_rate)}; serial wall − git − agent"),
        (percentile(raw_samples, 0.5), "ms", ""),
        (percentile(raw_samples, 0.99), "ms", p99(raw_samples)),
        (percentile(our_samples, 0.5), "ms", ""),
        (percentile(our_samples, 0.99), "ms", p99(our_samples)),
    ]
    print()
    print_table(
        ["measure", "value", "unit", "ratio / target"],
        [[m, fmt(v), unit, note] for m, (v, unit, note) in zip(MEASURES, values, strict=True)],
        text_last=True,
    )
    print(
        f"\nsettings: jobs {args.jobs} in batches of {args.batch}; rounds {args.rounds}; protocols "
        f"{args.protocols} × {args.steps} steps (d: {args.serial_protocols} × {args.steps}); "
        f"concurrency {c}; latency jobs {args.latency_jobs}; {where}; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"medians of {args.rounds} rounds; each round: raw {', '.join(f'{r:.0f}' for r in raw_rates)} jobs/s"
        f"; (f) {', '.join(f'{r.steps_per_second:.1f}' for r in floors)}",
        end="",
    )
    for label, runs in variants.items():
        print(f"; ({label}) {', '.join(f'{r.steps_per_second:.1f}' for r in runs)}", end="")
    print(" steps/s")
    print_breakdown([floor, full, inproc, pidfd, serial])
    print_goals(full, floor, median_rate("a") / floor_rate)
    if args.profile:
        print_profile(args.profile, variants["a"][0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", help="a server where this user may create databases (default: embedded)"
    )
    parser.add_argument("--jobs", type=int, default=2000, help="no-op jobs per baseline round")
    parser.add_argument("--batch", type=int, default=500, help="jobs per batch_defer_async")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every throughput measure (medians)")
    parser.add_argument("--protocols", type=int, default=6, help="protocols (and projects) per variant")
    parser.add_argument("--steps", type=int, default=3, help="steps per protocol")
    parser.add_argument("--serial-protocols", type=int, default=3, help="protocols of variant (d)")
    parser.add_argument(
        "--concurrency", type=int, default=Settings.model_fields["worker_concurrency"].default
    )
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--profile", metavar="FILE", help="cProfile variant (a) into FILE and summarise it")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (< 20 s)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rounds, args.protocols, args.serial_protocols, args.latency_jobs = 1000, 1, 2, 1, 50
    scratch = Path(tempfile.mkdtemp(prefix="tg-bench-queue-"))
    os.chmod(scratch, 0o755)  # the embedded server may run as another user
    log_path = scratch / "bench.log"
    try:
        # Logged as `tasksgodzilla serve` logs, into a file: formatting log lines is part of a job's cost.
        with open(log_path, "w") as log_file:
            configure_logging(pipeline_settings(scratch, args.concurrency), stream=log_file)
            try:
                with bench_database(args.database_url, scratch) as (url, where):
                    asyncio.run(measure(args, url, where, scratch))
            except BaseException:
                log_file.flush()
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                print("\n".join(["last log lines:", *tail]), file=sys.stderr)
                raise
            finally:
                logging.getLogger().handlers.clear()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
