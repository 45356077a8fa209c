"""Processes found through /proc: a process tree frozen and killed, and processes working in a folder.

Used by `app.engines.process` when an agent run times out or is cancelled, and by a job that starts
in a worktree an earlier job's agent may still be working in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

# A bound on /proc sweeps while freezing a tree; each one finds the children of the last.
MAX_SWEEPS = 50
# How long, in all, processes may take to really stop (one in uninterruptible sleep stops only when
# it leaves it): the kill goes ahead after that.
STOP_WAIT_SECONDS = 0.5
STOPPED_STATES = frozenset({"T", "t", "Z", "X", None})


def signal_group(pgid: int, sig: signal.Signals, pids: Iterable[int] = ()) -> None:
    """`sig` to process group `pgid` and to each of `pids`, wherever they are gone already."""
    for target in (-pgid, *pids):  # a negative pid signals the whole group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)


def kill_tree(leader: int) -> None:
    """Freeze the leader's group and all its descendants, whatever their session, then kill them."""
    stopped: set[int] = set()
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for _ in range(MAX_SWEEPS):
        found = _tree(leader, stopped) - stopped
        if not found:
            break
        signal_group(leader, signal.SIGSTOP, found)
        _until_stopped(found, deadline)
        stopped |= found
    signal_group(leader, signal.SIGKILL, stopped)  # SIGKILL needs no SIGCONT


def _until_stopped(pids: set[int], deadline: float) -> None:
    """Wait until each process has really stopped (or gone): signals arrive asynchronously, and one
    still inside fork() when SIGSTOP was sent creates its child after the next sweep has looked."""
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _state(pid) not in STOPPED_STATES}
        if pending:
            time.sleep(0.001)  # in a worker thread (see _kill_tree_off_loop): the event loop runs on


def _state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, D, T, Z …), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def _tree(leader: int, known: set[int]) -> set[int]:
    """The members of group `leader`, `known`, and every process below them, from /proc."""
    # Not the leader's pid itself: once reaped it may be reused; its group id cannot be while in use.
    children: dict[int, list[int]] = {}
    roots = set(known)
    for pid, parent, group in _process_table():
        children.setdefault(parent, []).append(pid)
        if group == leader:
            roots.add(pid)
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _pids() -> list[int]:
    """Every process id in /proc; empty where there is none."""
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def _process_table() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process; empty where there is no /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    table = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            table.append((int(entry), int(fields[1]), int(fields[2])))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return table


def kill_processes_in(folder: Path) -> int:
    """Kill every process working inside `folder` (an agent orphaned by a worker that died); how many.

    Jobs of one protocol never overlap, so whatever runs in its worktree when a job starts is left
    over from a dead one, and would keep editing files under the next attempt's feet.
    """
    root = str(folder.resolve())
    inside = root.rstrip("/") + "/"
    found = set()
    # Every job start sweeps /proc: one readlink per process, compared as text (no stat file read,
    # no Path per process).
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue  # gone, or not ours to look at
        if cwd == root or cwd.startswith(inside):
            found.add(pid)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
    return len(found)
