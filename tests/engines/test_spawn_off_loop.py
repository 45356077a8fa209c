"""Agents are forked off the event loop (the API shares it with the worker in `serve`), and still die
with the worker that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from app.engines import spawn
from app.engines.process import run_process
from tests.engines.test_process import ENV, sleep_marker, survivors

pytestmark = pytest.mark.skipif(not spawn.AVAILABLE, reason="needs pidfd_open (Linux 5.3+)")


async def test_the_fork_happens_in_a_thread_of_its_own_not_the_loops(tmp_path, monkeypatch):
    forked_in: list[threading.Thread] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        forked_in.append(threading.current_thread())
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    outcome = await run_process(
        ["/bin/sh", "-c", "read line; echo got $line; echo oops >&2; exit 3"],
        cwd=tmp_path,
        env=ENV,
        stdin_data=b"hello\n",
        timeout_seconds=10,
        max_output_bytes=4096,
    )
    assert (outcome.exit_code, outcome.stdout_lines, outcome.stderr) == (3, ["got hello"], "oops\n")
    assert forked_in
    assert all(thread is not threading.main_thread() for thread in forked_in)


def test_an_agent_dies_with_the_worker_that_started_it(tmp_path: Path) -> None:
    """`kill -9` of the worker: the kernel kills its agent (the parent-death signal set before exec
    survives a fork from the spawning thread)."""
    marker = sleep_marker()
    worker = tmp_path / "worker.py"
    worker.write_text(
        textwrap.dedent(
            f"""
            import asyncio, sys
            sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
            from pathlib import Path
            from app.engines.process import run_process

            async def main():
                task = asyncio.create_task(run_process(
                    ["/bin/sleep", "{marker}"], cwd=Path({str(tmp_path)!r}), env={ENV!r},
                    stdin_data=None, timeout_seconds=60, max_output_bytes=1024))
                await asyncio.sleep(0.2)
                print("started", flush=True)
                await task

            asyncio.run(main())
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(worker)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 10
        while not survivors(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert survivors(marker), "the agent did not start"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while survivors(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not survivors(marker), "the agent outlived its worker"
    finally:
        process.kill()
        process.wait()


def test_the_serve_loop_forks_every_child_off_the_loop(monkeypatch, tmp_path):
    """git and every other `create_subprocess_exec` of `serve` and `worker` (their loop comes from
    `spawn.new_event_loop`): the same pipes, exit codes and cancellation as asyncio's own."""
    import asyncio

    forked_in: list[threading.Thread] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        forked_in.append(threading.current_thread())
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    marker = sleep_marker()

    async def main() -> tuple[bytes, bytes, int | None]:
        child = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", "read x; echo out $x; echo err >&2; exit 5",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await child.communicate(b"in\n")
        starting = asyncio.create_subprocess_exec("/bin/sleep", marker, start_new_session=True)
        slow = asyncio.create_task(starting)
        await asyncio.sleep(0)  # the spawn is under way in the spawning thread
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return out, err, child.returncode

    with asyncio.Runner(loop_factory=spawn.new_event_loop) as runner:
        out, err, code = runner.run(main())
    assert (out, err, code) == (b"out in\n", b"err\n", 5)
    if sys.version_info < (3, 12):
        assert forked_in
        assert all(thread is not threading.main_thread() for thread in forked_in)
    assert not survivors(marker), "a child whose start was cancelled was left running"
