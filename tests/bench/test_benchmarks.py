"""Smoke tests of the benchmarks: a quick run against the test server exits 0 and prints its table.

Never a speed assertion: the figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def quick_run(
    script: str, database_url: str, cwd: Path, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`script --quick` in a process group of its own: on a timeout the bench's servers and workers
    go with it (killing the bench alone left them running after the session)."""
    argv = [sys.executable, script, "--quick", "--database-url", database_url]
    with subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as bench:
        try:
            stdout, stderr = bench.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(bench.pid, signal.SIGKILL)
            stdout, stderr = bench.communicate()
            said = f"{stdout[-3000:]}{stderr[-3000:]}"
            raise AssertionError(f"{script} --quick took over {timeout} s\n{said}") from None
    return subprocess.CompletedProcess(argv, bench.returncode, stdout, stderr)


API_MEASURES = (
    "ceiling: bare aiohttp, constant JSON",
    "reference: bare aiohttp + asyncpg, one row",
    "reference: bare aiohttp + asyncpg, 50 rows",
    "GET /protocols/{id}",
    "GET /protocols/{id}, If-None-Match: 304",
    "GET /protocols/{id}, project token",
    "GET /projects/{id}/protocols, first page",
    "GET /projects/{id}/protocols, deep page",
)
QUEUE_MEASURES = (
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
SCALE_MEASURES = (
    "runs, deep page",
    "runs, title search (no hit)",
    "console activity, type watchdog.",
    "GET /metrics",
    "GET /queue",
    "scan: requeue_missing_work",
    "scan: fold_metric_counts",
)
SERVE_LOAD_MEASURES = (
    "GET /protocols/{id}, serve idle",
    "GET /protocols/{id}, serve running the pipeline",
)
SSE_MEASURES = ("hub", "per-client")
CONSOLE_MEASURES = (
    "GET /console/projects/{id}, first page",
    "GET /projects/{id}/protocols?limit=50",
)


@pytest.mark.parametrize(
    ("script", "measures", "closing"),
    [
        ("api.py", API_MEASURES, "targets: "),
        ("queue.py", QUEUE_MEASURES, "per step"),
        ("console.py", CONSOLE_MEASURES, "target (console page"),
        ("serve_load.py", SERVE_LOAD_MEASURES, "target (p99 < 50 ms"),
        ("sse.py", SSE_MEASURES, "goal (every event to every client"),
        ("scale.py", SCALE_MEASURES, "goals (growth <="),
    ],
    ids=["api", "queue", "console", "serve_load", "sse", "scale"],
)
def test_quick_run_prints_every_measure(postgres_server_url, tmp_path, script, measures, closing):
    done = quick_run(str(BENCH / script), postgres_server_url, tmp_path, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for measure in measures:
        assert any(line.startswith(f"{measure}  ") for line in lines), measure
    assert "settings: " in done.stdout
    assert closing in done.stdout


def test_workers_quick_run_prints_the_scaling_table_and_the_travel_cost(postgres_server_url, tmp_path):
    done = quick_run(str(BENCH / "workers.py"), postgres_server_url, tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout.split("workers   steps/s   ratio")[1].split("travel per step")[0]
    assert [line.split()[0] for line in table.strip().splitlines()[1:]] == ["1", "2"]
    assert "travel per step: " in done.stdout


def test_notify_quick_run_routes_every_notifying_event_to_every_channel(postgres_server_url, tmp_path):
    done = quick_run(str(BENCH / "notify.py"), postgres_server_url, tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| baseline: read the watched events |" in done.stdout
    assert "| routing pass (rules, deliveries, jobs, cursor) |" in done.stdout
    assert "deliveries routed: 1,000 " in done.stdout  # 500 notifying events x 2 channels
