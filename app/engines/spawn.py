"""Starting a child process without stalling the event loop that the API shares with the worker.

`loop.subprocess_exec` forks in the loop's thread and waits there until the child has exec'd. With a
`preexec_fn` (the agent's parent-death signal) or a change of user, Python cannot use vfork: the
whole process is forked (its page tables copied) and the child runs Python code before exec, so each
agent spawn held every request of a busy `serve` for milliseconds (tens under load). Here the fork
happens in one long-lived thread of its own; the loop only connects the pipes and hears the exit
through a pidfd, the way Python 3.12's default child watcher does.

The parent-death signal is tied to the thread that forks: this thread lives as long as the process
(an executor's idle thread never exits), so an agent still dies with its worker.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

AVAILABLE = hasattr(os, "pidfd_open")  # Linux 5.3 and later
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasksgodzilla-spawn")


class Child:
    """A running child: its pipes as asyncio streams, its exit status once `exited` is set."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter | None,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self.pid = popen.pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.exited = asyncio.Event()
        self._popen = popen

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def _reap(self, loop: asyncio.AbstractEventLoop, pidfd: int) -> None:
        """The pidfd is readable: the child has exited (a status, not yet reaped)."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its status is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        loop.remove_reader(pidfd)
        os.close(pidfd)
        self._popen.returncode = os.waitstatus_to_exitcode(status)
        self.exited.set()


async def spawn(argv: Sequence[str], **popen: Any) -> Child:
    """`subprocess.Popen(argv, **popen)` in the spawning thread (its exceptions raised here as they
    are), with `stdout` and `stderr` piped, `stdin` piped or not as `popen` says. A cancellation while
    it starts kills the child (and its group, when it leads one) as soon as it exists."""
    loop = asyncio.get_running_loop()
    group = bool(popen.get("start_new_session"))

    def start() -> subprocess.Popen[bytes]:
        # An argument list, never a shell: the caller chose the executable (a setting).
        return subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)  # noqa: S603

    starting = loop.run_in_executor(_SPAWNER, start)
    try:
        started = await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(functools.partial(_kill_once_started, group=group))
        raise
    try:
        return await _attach(loop, started)
    except BaseException:
        _kill(started, group=group)
        raise


def _kill_once_started(future: asyncio.Future[subprocess.Popen[bytes]], *, group: bool) -> None:
    if not future.cancelled() and future.exception() is None:
        _kill(future.result(), group=group)


async def _attach(loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes]) -> Child:
    assert popen.stdout is not None
    assert popen.stderr is not None
    stdout = asyncio.StreamReader(limit=2**16, loop=loop)
    stderr = asyncio.StreamReader(limit=2**16, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout, loop=loop), popen.stdout)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stderr, loop=loop), popen.stderr)
    stdin = None
    if popen.stdin is not None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop), popen.stdin
        )
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
    child = Child(popen, stdin, stdout, stderr)
    pidfd = os.pidfd_open(popen.pid)
    loop.add_reader(pidfd, child._reap, loop, pidfd)
    child._reap(loop, pidfd)  # it may have exited already (no readiness is lost: the fd stays readable)
    return child


def _kill(popen: subprocess.Popen[bytes], *, group: bool) -> None:
    """SIGKILL to a child we will not run after all (and to its group). Not waited for here: the
    `subprocess` module reaps an abandoned child when it starts the next one."""
    try:
        if group:
            os.killpg(popen.pid, signal.SIGKILL)
        else:
            popen.kill()
    except ProcessLookupError:
        pass
