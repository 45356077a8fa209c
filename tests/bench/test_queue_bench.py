"""Smoke test of bench/queue.py: a quick run against the test server exits 0 and prints its table.

Never a timing assertion: the figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "queue.py"
MEASURES = (
    "raw queue: no-op jobs drained",
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


def test_quick_run_prints_every_measure(postgres_server_url, tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--database-url", postgres_server_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for measure in MEASURES:
        assert any(line.startswith(f"{measure}  ") for line in lines), measure
    assert "settings: " in done.stdout
    assert "per step" in done.stdout
