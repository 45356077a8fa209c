"""`tasksgodzilla serve` with every event-loop callback timed: what holds the loop, by CPU and wall time.

Run by bench/serve_load.py (`--loop-report`) in place of `tasksgodzilla serve`. Each callback the
loop runs (a task step, an I/O callback) is timed in CPU time of the loop's thread and in wall time;
those over `TG_LOOP_PROBE_MS` (default 3 ms) of CPU, or 10 ms of wall time, are summed by where they
were (the task's coroutine and the one it was awaiting). On exit the summary goes to the JSON file
`TG_LOOP_PROBE_OUT`. A callback long in CPU holds every request behind it; one long in wall time but
short in CPU was waiting for a CPU (a busy machine) or blocked in a system call (a fork, file I/O).
"""

# ruff: noqa: E402 - the imports follow the sys.path fix below

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/api.py: bench/queue.py shadows the standard library's `queue` if this folder is on the path.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import asyncio
import asyncio.events
import atexit
import json
import os
import time
from collections import defaultdict
from typing import Any

CPU_OVER = float(os.environ.get("TG_LOOP_PROBE_MS", "3")) / 1000
WALL_OVER = 0.010
# Per place: count, CPU, wall, the longest CPU, the longest wall.
_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
_all = [0, 0.0]  # callbacks, their CPU
_run = asyncio.events.Handle._run


def _where(handle: asyncio.events.Handle) -> str:
    callback: Any = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro: Any = task.get_coro()
        outer = inner = getattr(coro, "__qualname__", "?")
        while (awaited := getattr(coro, "cr_await", None)) is not None and hasattr(awaited, "cr_await"):
            coro = awaited
            inner = getattr(coro, "__qualname__", "?")
        return f"task {outer} … {inner}"
    return str(getattr(callback, "__qualname__", callback))[:120]


def _timed(handle: asyncio.events.Handle) -> None:
    wall, cpu = time.perf_counter(), time.thread_time()
    _run(handle)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    _all[0] += 1
    _all[1] += cpu
    if cpu > CPU_OVER or wall > WALL_OVER:
        entry = _stats[_where(handle)]
        entry[0] += 1
        entry[1] += cpu
        entry[2] += wall
        entry[3] = max(entry[3], cpu)
        entry[4] = max(entry[4], wall)


def _dump() -> None:
    out = os.environ.get("TG_LOOP_PROBE_OUT")
    if out:
        rows = [[where, *figures] for where, figures in _stats.items()]
        with open(out, "w") as handle:
            json.dump({"callbacks": _all[0], "cpu": _all[1], "slow": rows}, handle)


def main() -> None:
    asyncio.events.Handle._run = _timed  # type: ignore[method-assign]
    atexit.register(_dump)
    from app.cli.main import main as cli

    sys.argv = ["tasksgodzilla", "serve"]
    cli()


if __name__ == "__main__":
    main()
