"""Running an agent CLI as a child process: argument list, own process group, deadline, output cap.

The whole process group is killed on timeout or cancellation, so an agent's own children (shells,
test runners) never outlive it. Output beyond the cap is dropped, not buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import AgentError

KILL_GRACE_SECONDS = 3.0
STDERR_KEEP_BYTES = 64 * 1024


@dataclass
class ProcessOutcome:
    """What a finished (or killed) process left behind."""

    exit_code: int | None
    stdout_lines: list[str] = field(default_factory=list)
    stderr: str = ""
    timed_out: bool = False
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
) -> ProcessOutcome:
    """Run `argv` (never through a shell) and collect its stdout line by line.

    `stdin_data=None` closes stdin at once. `on_line` sees every stdout line as it arrives.
    """
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=max(max_output_bytes, 1024 * 1024),
        )
    except FileNotFoundError:
        raise AgentError(f"agent executable not found: {argv[0]}") from None
    except PermissionError:
        raise AgentError(f"agent executable is not runnable: {argv[0]}") from None

    outcome = ProcessOutcome(exit_code=None)
    collected = 0

    async def feed_stdin() -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(stdin_data or b"")
            await process.stdin.drain()
        process.stdin.close()

    async def read_stdout() -> None:
        nonlocal collected
        assert process.stdout is not None
        async for raw in process.stdout:
            if collected + len(raw) > max_output_bytes:
                outcome.truncated = True
                continue  # keep draining so the child never blocks on a full pipe
            collected += len(raw)
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            outcome.stdout_lines.append(line)
            if on_line is not None:
                on_line(line)

    async def read_stderr() -> None:
        assert process.stderr is not None
        kept = bytearray()
        async for raw in process.stderr:
            if len(kept) < STDERR_KEEP_BYTES:
                kept += raw[: STDERR_KEEP_BYTES - len(kept)]
        outcome.stderr = kept.decode("utf-8", errors="replace")

    tasks = [read_stdout(), read_stderr()]
    if stdin_data is not None:
        tasks.append(feed_stdin())
    try:
        async with asyncio.timeout(timeout_seconds):
            await asyncio.gather(*tasks)
            outcome.exit_code = await process.wait()
    except TimeoutError:
        outcome.timed_out = True
        await _kill_group(process)
    except BaseException:
        await _kill_group(process)  # cancelled: never leave the agent running
        raise
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
            break
        except TimeoutError:
            continue
    # The leader may be gone while children of the group linger: make sure of them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
