"""Running an agent CLI as a child process: argument list, own process group, deadline, silence
limit, output cap.

The child leads a new session. On timeout, a silence past its limit, or cancellation its whole tree
is frozen, then killed:
SIGSTOP to its process group and every descendant, swept again until no new process appears (a
stopped parent can neither fork nor die, so none of its children is orphaned out of sight), then
SIGKILL to all. There is no graceful SIGTERM first: a dying agent can fork one last child that
outlives it (codex does, verified), and nothing an agent would save on the way out is kept by us.
After a normal exit, whatever is left in the group is killed too.

stdout is read in chunks and split into lines: every line reaches `on_line` (a parser can follow a
long run to its end), but only the first `max_output_bytes` are kept, and one line is cut at that
size. Nothing beyond the cap is buffered.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.engines import spawn
from app.engines.agent_user import AgentUser
from app.engines.process_tree import kill_processes_in, kill_tree, signal_group
from app.errors import AgentError, ConfigError

__all__ = ["ProcessOutcome", "StopRun", "kill_processes_in", "run_process"]

SETTLE_SECONDS = 1.0
# After the leader exits, how long its children may keep our pipes open before they are killed.
DRAIN_SECONDS = 2.0
STDERR_KEEP_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024


class StopRun(Exception):
    """Raised by an `on_line` callback when the run has gone far enough (a budget): the child's tree is
    killed as on a timeout, and `ProcessOutcome.stopped` holds the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ProcessOutcome:
    """What a finished (or killed) process left behind."""

    exit_code: int | None
    stdout_lines: list[str] = field(default_factory=list)
    stderr: str = ""  # the last STDERR_KEEP_BYTES: where a failing CLI says why
    timed_out: bool = False
    silent: bool = False  # killed after `silence_seconds` without a byte of output
    stopped: str | None = None  # why an `on_line` callback stopped it (StopRun)
    truncated: bool = False
    duration_ms: int = 0


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin_data: bytes | None,
    timeout_seconds: float,
    max_output_bytes: int,
    on_line: Callable[[str], None] | None = None,
    setting: str | None = None,
    user: AgentUser | None = None,
    silence_seconds: float | None = None,
) -> ProcessOutcome:
    """Run `argv` (never through a shell) with exactly `env`, and collect its stdout line by line;
    as `user` (its own group only, no supplementary groups) when one is given.

    `stdin_data=None` gives the child no stdin. An executable that is missing or cannot be run is a
    ConfigError naming `setting` (the variable that chose it): trying again would not help. A missing
    `cwd` is an AgentError. A cancelled caller gets CancelledError once the child and its descendants
    are gone. With `silence_seconds`, a child that prints nothing (stdout or stderr) for that long is
    stalled: killed as on a timeout, `ProcessOutcome.silent` set; a long run that keeps talking goes on.
    """
    started = time.monotonic()
    process, exited = await _spawn(
        argv, cwd=cwd, env=env, piped_stdin=stdin_data is not None, setting=setting, user=user
    )
    outcome = ProcessOutcome(exit_code=None)
    assert process.stdout is not None
    assert process.stderr is not None
    heard = _Heard()
    io = [
        _read_stdout(process.stdout, outcome, max_output_bytes, on_line, heard),
        _read_stderr(process.stderr, outcome, heard),
    ]
    if stdin_data is not None:
        assert process.stdin is not None
        io.append(_feed(process.stdin, stdin_data))
    readers = asyncio.ensure_future(asyncio.gather(*io))
    watch = asyncio.ensure_future(heard.silence(silence_seconds)) if silence_seconds else None
    try:
        async with asyncio.timeout(timeout_seconds):
            await _until_exit(exited, readers, watch)
            await _drain(process, exited, readers)
    except TimeoutError:
        outcome.timed_out = True
        await _kill_tree_off_loop(process.pid)
        await _settle(exited, readers)
    except _Silent:
        outcome.silent = True
        await _kill_tree_off_loop(process.pid)
        await _settle(exited, readers)
    except StopRun as stop:
        outcome.stopped = stop.reason
        await _kill_tree_off_loop(process.pid)
        await _settle(exited, readers)
    except BaseException:
        await _kill_tree_off_loop(process.pid)  # cancelled: never leave the agent running
        await _settle(exited, readers)
        raise
    finally:
        if watch is not None:
            watch.cancel()
    signal_group(process.pid, signal.SIGKILL)  # background leftovers of a finished run
    outcome.exit_code = process.returncode
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


class _Silent(Exception):
    """The child printed nothing for its silence limit."""


class _Heard:
    """When the child last printed, and the watch that ends a silence longer than a limit. Output
    only notes the time (a loud agent's every chunk costs one clock read); the watch wakes at most
    once per `limit`, when the silence would be up."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def now(self) -> None:
        self.last = time.monotonic()

    async def silence(self, limit: float) -> None:
        """Return never; raise _Silent once `limit` seconds pass without output."""
        while True:
            await asyncio.sleep(self.last + limit - time.monotonic())
            if time.monotonic() - self.last >= limit:
                raise _Silent


class _ExitNotifyingProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells when the child itself exits: Python 3.11's `Process.wait()` also waits for its pipes,
    which a child of the agent may hold open forever."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=CHUNK_BYTES, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _dying_with(parent: int) -> Callable[[], None]:
    """What the child runs before exec: the kernel sends it SIGKILL when the worker that started it
    dies, even by `kill -9`, so an agent never goes on working (and billing) for a dead job. Kept across
    exec; an agent's own children are killed by the next job in the worktree (`kill_processes_in`)."""

    def arm() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the worker died between fork and prctl
                os._exit(137)

    return arm


async def _spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    piped_stdin: bool,
    setting: str | None,
    user: AgentUser | None,
) -> tuple[asyncio.subprocess.Process | spawn.Child, asyncio.Event]:
    loop = asyncio.get_running_loop()
    fix = f" (check {setting})" if setting else ""
    as_user: dict[str, Any] = {}
    if user is not None:
        # The credentials change before `preexec_fn` runs, so the parent-death signal it sets survives.
        as_user = {"user": user.uid, "group": user.gid, "extra_groups": []}
        fix = f" by user {user.name}{fix}"
    options: dict[str, Any] = {
        "cwd": cwd,
        "env": dict(env),
        "stdin": asyncio.subprocess.PIPE if piped_stdin else asyncio.subprocess.DEVNULL,
        "start_new_session": True,
        "preexec_fn": _dying_with(os.getpid()),
        **as_user,
    }
    try:
        if spawn.AVAILABLE:  # forked off the event loop (app/engines/spawn.py)
            child = await spawn.spawn(argv, **options)
            return child, child.exited
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitNotifyingProtocol(loop),
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            **options,
        )
    except (FileNotFoundError, NotADirectoryError) as exc:
        if exc.filename is not None and Path(exc.filename) == cwd:
            raise AgentError(f"agent working directory does not exist: {cwd}") from None
        if os.sep in argv[0] and await asyncio.to_thread(os.path.isfile, argv[0]):
            problem = f"agent executable cannot start: {argv[0]}: its #! interpreter was not found"
        else:
            problem = f"agent executable not found: {argv[0]}"
        raise ConfigError(problem + fix, setting=setting) from None
    except PermissionError as exc:
        if exc.filename is not None and Path(exc.filename) == cwd:
            raise AgentError(f"agent working directory cannot be entered{fix}: {cwd}") from None
        raise ConfigError(f"agent executable is not runnable{fix}: {argv[0]}", setting=setting) from None
    except OSError as exc:
        raise ConfigError(
            f"agent executable cannot start: {argv[0]}: {exc.strerror}{fix}", setting=setting
        ) from None
    # What asyncio.create_subprocess_exec builds, with our protocol inside.
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.exited


class _LineSplitter:
    """Splits a byte stream into lines of at most `limit` bytes; the rest of a longer line is dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = bytearray()
        self.cutting = False  # the current line reached the limit: skip to its end
        self.cut_any = False

    def feed(self, chunk: bytes) -> list[bytes]:
        parts = chunk.split(b"\n")
        lines = []
        for index, part in enumerate(parts):
            if not self.cutting:
                room = self.limit - len(self.pending)
                if len(part) > room:
                    part = part[:room]
                    self.cutting = self.cut_any = True
                self.pending += part
            if index < len(parts) - 1:  # a newline ended this part
                lines.append(bytes(self.pending))
                self.pending.clear()
                self.cutting = False
        return lines

    def finish(self) -> list[bytes]:
        return [bytes(self.pending)] if self.pending else []


async def _read_stdout(
    stream: asyncio.StreamReader,
    outcome: ProcessOutcome,
    max_bytes: int,
    on_line: Callable[[str], None] | None,
    heard: _Heard,
) -> None:
    splitter = _LineSplitter(max_bytes)
    kept = 0

    def take(raw: bytes) -> None:
        nonlocal kept
        line = raw.decode("utf-8", errors="replace").removesuffix("\r")
        if not outcome.truncated and kept + len(raw) <= max_bytes:
            kept += len(raw) + 1
            outcome.stdout_lines.append(line)
        else:
            outcome.truncated = True  # the kept lines stay a prefix of the output
        if on_line is not None:
            on_line(line)

    while chunk := await stream.read(CHUNK_BYTES):
        heard.now()
        if on_line is None and outcome.truncated:
            continue  # nobody wants more lines: drain so the child never blocks on a full pipe
        for raw in splitter.feed(chunk):
            take(raw)
    for raw in splitter.finish():
        take(raw)
    outcome.truncated = outcome.truncated or splitter.cut_any


async def _read_stderr(stream: asyncio.StreamReader, outcome: ProcessOutcome, heard: _Heard) -> None:
    kept = b""
    while chunk := await stream.read(CHUNK_BYTES):
        heard.now()
        kept = (kept + chunk)[-STDERR_KEEP_BYTES:]
        outcome.stderr = kept.decode("utf-8", errors="replace")


async def _feed(stream: asyncio.StreamWriter, data: bytes) -> None:
    try:
        stream.write(data)
        await stream.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child does not read its stdin: not our failure
    finally:
        stream.close()


async def _until_exit(
    exited: asyncio.Event, readers: asyncio.Future[Any], watch: asyncio.Future[None] | None
) -> None:
    """Wait for the child to exit; a reader's own failure (a bug in `on_line`) and the end of the
    silence watch (_Silent) are raised at once."""
    waiter = asyncio.ensure_future(exited.wait())
    try:
        watched = {waiter, readers} if watch is None else {waiter, readers, watch}
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if readers in done:
            await readers
        if watch is not None and watch in done:
            await watch
        await waiter
    finally:
        waiter.cancel()


async def _drain(
    process: asyncio.subprocess.Process | spawn.Child, exited: asyncio.Event, readers: asyncio.Future[Any]
) -> None:
    """Read what is left after the leader exited; children still holding the pipes are killed."""
    await asyncio.wait({readers}, timeout=DRAIN_SECONDS)
    if readers.done():
        await readers  # raises what a reader raised
    else:
        signal_group(process.pid, signal.SIGKILL)
        await _settle(exited, readers)


async def _settle(exited: asyncio.Event, readers: asyncio.Future[Any]) -> None:
    """After a kill: wait a moment for the exit status and the end of output (a process out of our
    reach may keep a pipe open: its reader is then abandoned)."""
    waiter = asyncio.ensure_future(exited.wait())
    try:
        await asyncio.wait({waiter, readers}, timeout=SETTLE_SECONDS)
    finally:
        waiter.cancel()
    if not readers.done():
        readers.cancel()
    readers.add_done_callback(lambda done: done.cancelled() or done.exception())


async def _kill_tree_off_loop(leader: int) -> None:
    """`_kill_tree` in a thread, since it reads /proc and waits for processes to stop. Waited for to
    its end even when cancelled meanwhile (the processes are gone before we return); a cancellation
    that came meanwhile is raised afterwards."""
    killing = asyncio.ensure_future(asyncio.to_thread(kill_tree, leader))
    cancelled = False
    while not killing.done():
        try:
            await asyncio.shield(killing)
        except asyncio.CancelledError:
            cancelled = True
    killing.result()
    if cancelled:
        raise asyncio.CancelledError
