"""The process runner against real child processes: deadlines, process groups, output caps, stdin, env."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from app.engines import process as process_module
from app.engines.process import StopRun, run_process
from app.errors import AgentError, ConfigError

BASH = "/bin/bash"
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def live_processes() -> list[tuple[int, int, str]]:
    """(pid, process group, command line) of every process that is not a zombie."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        if fields[0] != b"Z":
            found.append((int(entry), int(fields[2]), cmdline))
    return found


def survivors(marker: str, pgid: int | None = None) -> list[tuple[int, int, str]]:
    """Processes whose command line holds `marker` or that are in group `pgid`, after a short wait."""
    deadline = time.monotonic() + 2
    while True:
        left = [p for p in live_processes() if marker in p[2] or (pgid is not None and p[1] == pgid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def sleep_marker() -> str:
    """A unique `sleep` argument, to find the children a test started."""
    return f"{30 + uuid.uuid4().int % 10_000 / 10_000:.4f}"


async def run(script: str, tmp_path: Path, **kwargs: object) -> process_module.ProcessOutcome:
    options: dict[str, object] = {
        "cwd": tmp_path,
        "env": ENV,
        "stdin_data": None,
        "timeout_seconds": 10,
        "max_output_bytes": 1024 * 1024,
    }
    options.update(kwargs)
    return await run_process([BASH, "-c", script], **options)  # type: ignore[arg-type]


async def test_collects_stdout_lines_exit_code_and_stderr(tmp_path: Path) -> None:
    outcome = await run("echo one; echo two; echo oops >&2; exit 3", tmp_path)
    assert outcome.stdout_lines == ["one", "two"]
    assert outcome.exit_code == 3
    assert outcome.stderr == "oops\n"
    assert not outcome.timed_out
    assert not outcome.truncated


async def test_runs_in_the_working_directory(tmp_path: Path) -> None:
    outcome = await run("pwd", tmp_path)
    assert outcome.stdout_lines == [str(tmp_path)]


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = sleep_marker()
    started = time.monotonic()
    outcome = await run(f"echo $$; sleep {marker} & sleep {marker} & wait", tmp_path, timeout_seconds=0.5)
    assert outcome.timed_out
    assert outcome.exit_code is not None  # killed, and reaped
    assert time.monotonic() - started < 3
    assert survivors(marker, pgid=int(outcome.stdout_lines[0])) == []


async def test_a_silent_child_is_stalled_and_killed_before_its_deadline(tmp_path: Path) -> None:
    marker = sleep_marker()
    outcome = await run(f"echo $$; sleep {marker}", tmp_path, timeout_seconds=60, silence_seconds=1)
    assert outcome.silent
    assert not outcome.timed_out
    assert outcome.exit_code is not None
    assert survivors(marker, pgid=int(outcome.stdout_lines[0])) == []


async def test_a_long_run_that_keeps_talking_is_not_stalled(tmp_path: Path) -> None:
    # Longer than the silence limit in all, never silent that long: on stdout, then on stderr only.
    script = (
        "for i in $(seq 8); do echo $i; sleep 0.2; done; for i in $(seq 8); do echo $i >&2; sleep 0.2; done"
    )
    outcome = await run(script, tmp_path, silence_seconds=2.5)
    assert not outcome.silent
    assert outcome.exit_code == 0
    assert outcome.stdout_lines == [str(i) for i in range(1, 9)]


async def test_timeout_reaches_children_in_a_session_of_their_own(tmp_path: Path) -> None:
    marker = sleep_marker()
    outcome = await run(f"setsid sleep {marker} & wait", tmp_path, timeout_seconds=0.5)
    assert outcome.timed_out
    assert survivors(marker) == []


async def test_a_child_ignoring_sigterm_is_killed_at_once(tmp_path: Path) -> None:
    marker = sleep_marker()
    started = time.monotonic()
    outcome = await run(f"trap '' TERM; echo $$; sleep {marker}", tmp_path, timeout_seconds=0.5)
    assert outcome.timed_out
    assert time.monotonic() - started < 2
    assert survivors(marker, pgid=int(outcome.stdout_lines[0])) == []


async def test_children_forked_while_the_tree_is_killed_do_not_escape(tmp_path: Path) -> None:
    # A parent that keeps starting children in sessions of their own, as codex starts its sandbox:
    # any child forked between "find the tree" and "kill the tree" would be orphaned out of sight.
    marker = sleep_marker()
    script = f"while :; do setsid sleep {marker} & setsid sleep {marker} & done"
    for _ in range(3):
        outcome = await run(script, tmp_path, timeout_seconds=0.3)
        assert outcome.timed_out
        assert survivors(marker) == []


async def _sleeping_group(tmp_path: Path) -> tuple[str, asyncio.Task, list[str]]:
    """A shell that printed its pid and waits on a marked sleep: (marker, its running task, its lines)."""
    marker = sleep_marker()
    lines: list[str] = []
    started = asyncio.Event()

    def on_line(line: str) -> None:
        lines.append(line)
        started.set()

    task = asyncio.create_task(run(f"echo $$; sleep {marker} & wait", tmp_path, on_line=on_line))
    await asyncio.wait_for(started.wait(), 5)
    return marker, task, lines


async def test_cancellation_kills_the_group_and_propagates(tmp_path: Path) -> None:
    marker, task, lines = await _sleeping_group(tmp_path)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert survivors(marker, pgid=int(lines[0])) == []


async def test_a_failing_line_callback_is_raised_not_turned_into_a_timeout(tmp_path: Path) -> None:
    marker = sleep_marker()

    def broken(line: str) -> None:
        raise ValueError(f"parser bug on {line!r}")

    started = time.monotonic()
    with pytest.raises(ValueError, match="parser bug"):
        await run(f"echo hello; sleep {marker}", tmp_path, on_line=broken, timeout_seconds=20)
    assert time.monotonic() - started < 5
    assert survivors(marker) == []


async def test_a_line_callback_can_stop_the_run_which_is_then_killed_with_its_reason(tmp_path: Path) -> None:
    marker = sleep_marker()

    def budget(line: str) -> None:
        if line == "2":
            raise StopRun("over budget at line 2")

    started = time.monotonic()
    outcome = await run(
        f"echo 1; echo 2; sleep {marker}; echo 3", tmp_path, on_line=budget, timeout_seconds=20
    )
    assert outcome.stopped == "over budget at line 2"
    assert not outcome.timed_out
    assert "3" not in outcome.stdout_lines
    assert time.monotonic() - started < 5
    assert survivors(marker) == []


async def test_a_child_left_holding_stdout_does_not_hold_up_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_module, "DRAIN_SECONDS", 0.3)
    marker = sleep_marker()
    started = time.monotonic()
    outcome = await run(f"sleep {marker} & echo done", tmp_path, timeout_seconds=20)
    assert time.monotonic() - started < 3
    assert not outcome.timed_out
    assert outcome.exit_code == 0
    assert outcome.stdout_lines == ["done"]
    assert survivors(marker) == []


async def test_background_leftovers_of_a_finished_run_are_killed(tmp_path: Path) -> None:
    marker = sleep_marker()
    outcome = await run(f"sleep {marker} >/dev/null 2>&1 & echo started", tmp_path)
    assert outcome.exit_code == 0
    assert survivors(marker) == []


async def test_output_cap_drains_a_50_mb_line_without_hanging(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = await run("head -c 50000000 /dev/zero | tr '\\0' x", tmp_path, max_output_bytes=65536)
    assert time.monotonic() - started < 10
    assert outcome.exit_code == 0
    assert outcome.truncated
    assert outcome.stdout_lines == ["x" * 65536]


async def test_lines_past_the_cap_still_reach_on_line_but_are_not_kept(tmp_path: Path) -> None:
    seen: list[str] = []
    script = "for i in $(seq 1 50000); do printf '%01000d\\n' $i; done"
    outcome = await run(script, tmp_path, max_output_bytes=100_000, on_line=seen.append)
    assert outcome.truncated
    assert len(seen) == 50_000
    assert seen[-1] == f"{50000:01000d}"
    assert outcome.stdout_lines == seen[: len(outcome.stdout_lines)]
    assert sum(len(line) + 1 for line in outcome.stdout_lines) <= 100_000


async def test_stdin_is_delivered_and_closed(tmp_path: Path) -> None:
    data = "".join(f"line {i}\n" for i in range(20_000)).encode()  # larger than a pipe buffer
    outcome = await run("cat", tmp_path, stdin_data=data)
    assert outcome.exit_code == 0
    assert outcome.stdout_lines == [f"line {i}" for i in range(20_000)]


async def test_a_child_that_ignores_stdin_is_not_an_error(tmp_path: Path) -> None:
    outcome = await run("exit 0", tmp_path, stdin_data=b"x" * 5_000_000)
    assert outcome.exit_code == 0


async def test_without_stdin_data_the_child_reads_end_of_file(tmp_path: Path) -> None:
    outcome = await run("cat; echo end", tmp_path, timeout_seconds=5)
    assert outcome.stdout_lines == ["end"]


async def test_the_environment_is_exactly_what_was_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKSGODZILLA_API_TOKEN", "must-not-leak")
    env = {"PATH": "/usr/bin:/bin", "ONLY_THIS": "yes"}
    outcome = await run_process(
        ["/usr/bin/env"],
        cwd=tmp_path,
        env=env,
        stdin_data=None,
        timeout_seconds=5,
        max_output_bytes=65536,
    )
    assert sorted(outcome.stdout_lines) == sorted(f"{k}={v}" for k, v in env.items())


async def test_stderr_keeps_its_tail(tmp_path: Path) -> None:
    outcome = await run("head -c 200000 /dev/zero | tr '\\0' e >&2; echo THE-END >&2", tmp_path)
    assert outcome.stderr.endswith("THE-END\n")
    assert len(outcome.stderr) == process_module.STDERR_KEEP_BYTES


async def test_a_missing_executable_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found: .*no-such-agent \(check TASKSGODZILLA_X\)"):
        await run_process(
            [str(tmp_path / "no-such-agent")],
            cwd=tmp_path,
            env=ENV,
            stdin_data=None,
            timeout_seconds=5,
            max_output_bytes=65536,
            setting="TASKSGODZILLA_X",
        )


async def test_a_script_whose_interpreter_is_missing_says_so(tmp_path: Path) -> None:
    script = tmp_path / "agent"
    script.write_text("#!/nonexistent/node\n")
    script.chmod(0o755)
    with pytest.raises(ConfigError, match="#! interpreter was not found"):
        await run_process(
            [str(script)], cwd=tmp_path, env=ENV, stdin_data=None, timeout_seconds=5, max_output_bytes=65536
        )


async def test_a_file_that_cannot_be_executed_is_a_config_error(tmp_path: Path) -> None:
    script = tmp_path / "agent"
    script.write_text("#!/bin/sh\necho hi\n")  # not executable
    with pytest.raises(ConfigError, match="not runnable"):
        await run_process(
            [str(script)], cwd=tmp_path, env=ENV, stdin_data=None, timeout_seconds=5, max_output_bytes=65536
        )


async def test_a_missing_working_directory_raises_agent_error(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="working directory"):
        await run_process(
            [sys.executable, "-c", "pass"],
            cwd=tmp_path / "gone",
            env=ENV,
            stdin_data=None,
            timeout_seconds=5,
            max_output_bytes=65536,
        )


def test_kill_processes_in_kills_only_what_works_inside_the_folder(tmp_path):
    import subprocess
    import time

    from app.engines.process import kill_processes_in

    inside = tmp_path / "worktree" / "sub"
    inside.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    beside = tmp_path / "worktree-2"  # its path starts with the folder's: still outside it
    beside.mkdir()
    orphan = subprocess.Popen(["sleep", "60"], cwd=inside, start_new_session=True)
    bystanders = [
        subprocess.Popen(["sleep", "60"], cwd=where, start_new_session=True) for where in (outside, beside)
    ]
    try:
        time.sleep(0.1)
        assert kill_processes_in(tmp_path / "worktree") == 1
        assert orphan.wait(timeout=5) == -9
        assert [bystander.poll() for bystander in bystanders] == [None, None]
    finally:
        for bystander in bystanders:
            bystander.kill()
            bystander.wait()
        orphan.kill()


async def test_the_tree_is_killed_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Freezing and killing a tree reads /proc and waits for processes to stop: never on the loop."""
    real_kill_tree = process_module.kill_tree
    threads: list[int] = []

    def recording(leader: int) -> None:
        threads.append(threading.get_ident())
        real_kill_tree(leader)

    monkeypatch.setattr(process_module, "kill_tree", recording)
    marker = sleep_marker()
    outcome = await run(f"echo $$; sleep {marker} & wait", tmp_path, timeout_seconds=0.5)
    assert outcome.timed_out
    assert threads, "the tree was killed"
    assert threading.get_ident() not in threads
    assert survivors(marker, pgid=int(outcome.stdout_lines[0])) == []


async def test_cancelled_again_while_killing_the_tree_still_waits_for_the_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_kill_tree = process_module.kill_tree
    killing, may_finish = threading.Event(), threading.Event()
    finished: list[bool] = []

    def slow(leader: int) -> None:
        killing.set()
        may_finish.wait(30)  # held until the task was cancelled a second time
        real_kill_tree(leader)
        finished.append(True)

    monkeypatch.setattr(process_module, "kill_tree", slow)
    marker, task, lines = await _sleeping_group(tmp_path)
    task.cancel()
    assert await asyncio.to_thread(killing.wait, 10)
    task.cancel()  # the second cancellation arrives while the tree is being killed
    await asyncio.sleep(0)
    may_finish.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == [True], "the task ended only once the kill had finished"
    assert survivors(marker, pgid=int(lines[0])) == []
