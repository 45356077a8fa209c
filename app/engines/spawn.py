"""Starting a child process without stalling the event loop that the API shares with the worker.

`loop.subprocess_exec` forks in the loop's thread and waits there until the child has exec'd. With a
`preexec_fn` (the agent's parent-death signal) or a change of user, Python cannot use vfork: the
whole process is forked (its page tables copied) and the child runs Python code before exec, so each
agent spawn held every request of a busy `serve` for milliseconds (tens under load). Here the fork
happens in one long-lived thread of its own; the loop only connects the pipes and hears the exit
through a pidfd, the way Python 3.12's default child watcher does.

The parent-death signal is tied to the thread that forks: this thread lives as long as the process
(an executor's idle thread never exits), so an agent still dies with its worker.

Every other child (git: ~17 a step) is started by asyncio itself, with vfork: cheap in CPU, but the
loop still waits until the child has exec'd, ~15 ms on a loaded machine. `new_event_loop` gives
`serve` and `worker` a loop whose subprocess support forks in the same thread (Python 3.11, whose
asyncio internals it extends; later versions keep the standard loop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
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

    started = await _off_loop(loop, start, group=group)
    try:
        return await _attach(loop, started)
    except BaseException:
        _kill(started, group=group)
        raise


async def _off_loop(
    loop: asyncio.AbstractEventLoop, start: Callable[[], subprocess.Popen[bytes]], *, group: bool
) -> subprocess.Popen[bytes]:
    """`start()` in the spawning thread. Cancelled meanwhile: the child is killed as soon as it exists,
    by whichever side comes second (the loop may be gone by then)."""
    lock = threading.Lock()
    state: dict[str, Any] = {"cancelled": False, "child": None}

    def run() -> subprocess.Popen[bytes]:
        child = start()
        with lock:
            state["child"] = child
            if state["cancelled"]:
                _kill(child, group=group)
        return child

    try:
        return await asyncio.wrap_future(_SPAWNER.submit(run), loop=loop)
    except asyncio.CancelledError:
        with lock:
            state["cancelled"] = True
            if state["child"] is not None:
                _kill(state["child"], group=group)
        raise


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


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose `create_subprocess_exec` forks off the loop (Linux, Python 3.11); the
    standard one elsewhere."""
    if sys.platform.startswith("linux") and sys.version_info < (3, 12):
        return _SpawningLoop()
    return asyncio.new_event_loop()


if sys.platform.startswith("linux") and sys.version_info < (3, 12):
    from asyncio import unix_events

    class _Prespawned(unix_events._UnixSubprocessTransport):  # type: ignore[name-defined]
        """asyncio's subprocess transport around a child started already (in the spawning thread)."""

        def _start(
            self, args: Any, shell: Any, stdin: Any, stdout: Any, stderr: Any, bufsize: Any, **kwargs: Any
        ) -> None:
            self._proc = kwargs["popen"]

    class _SpawningLoop(asyncio.SelectorEventLoop):
        """Python 3.11's `_UnixSelectorEventLoop._make_subprocess_transport`, the fork moved to the
        spawning thread; the child watcher, pipes and protocol are asyncio's own."""

        async def _make_subprocess_transport(
            self, protocol: Any, args: Any, shell: Any, stdin: Any, stdout: Any, stderr: Any, bufsize: Any,
            extra: Any = None, **kwargs: Any,
        ) -> Any:  # fmt: skip
            with asyncio.get_child_watcher() as watcher:
                if not watcher.is_active():
                    raise RuntimeError("asyncio.get_child_watcher() is not activated")

                def start() -> subprocess.Popen[bytes]:
                    return subprocess.Popen(  # noqa: S603 - asyncio's own call, moved
                        args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                        universal_newlines=False, bufsize=bufsize, **kwargs,
                    )  # fmt: skip

                popen = await _off_loop(self, start, group=bool(kwargs.get("start_new_session")))
                waiter = self.create_future()
                transport = _Prespawned(
                    self, protocol, args, shell, stdin, stdout, stderr, bufsize,
                    waiter=waiter, extra=extra, popen=popen,
                )  # fmt: skip
                callback = self._child_watcher_callback  # type: ignore[attr-defined]
                watcher.add_child_handler(transport.get_pid(), callback, transport)
                try:
                    await waiter
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    transport.close()
                    await transport._wait()
                    raise
            return transport
