"""`tasksgodzilla project …` and `protocol …` as an operator runs them: real processes, a real
PostgreSQL, real git repositories, and the scripted `command` agent doing the agents' work."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from app.config_display import mask_url
from tests.support.workflow import SCRIPTED_AGENT, git, make_repos

CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"
TIMEOUT = 60


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """tests.support.workflow.workflow_settings, as the environment of a process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKSGODZILLA_", "AGENT_"))}
    env.update(
        TASKSGODZILLA_DATABASE_URL=database_url,
        TASKSGODZILLA_DATA_DIR=str(tmp_path / "data"),
        TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES="true",
        TASKSGODZILLA_LOCAL_PATH_ROOTS=str(tmp_path),
        TASKSGODZILLA_COMMAND_AGENT=json.dumps([sys.executable, str(SCRIPTED_AGENT)]),
        TASKSGODZILLA_PLANNING_ENGINE="command",
        TASKSGODZILLA_EXECUTION_ENGINE="command",
        TASKSGODZILLA_QA_ENGINE="command",
        TASKSGODZILLA_AGENT_ENV_PASSTHROUGH="PATH,HOME,AGENT_QA_FAIL,AGENT_SLEEP,AGENT_PLAN_STEPS",
        TASKSGODZILLA_WORKER_HEARTBEAT_SECONDS="0.5",
        TASKSGODZILLA_STALLED_AFTER_SECONDS="3",
        TASKSGODZILLA_SCHEDULER_INTERVAL_SECONDS="1",
        TASKSGODZILLA_RETRY_BACKOFF_SECONDS="0.1",
        TASKSGODZILLA_RETRY_BACKOFF_MAX_SECONDS="0.5",
        TASKSGODZILLA_AGENT_TIMEOUT_SECONDS="120",
        # The test database is at head already; `project_env` keeps the default (true) to prove that path.
        TASKSGODZILLA_MIGRATE_ON_START="false",
    )
    env.update(extra)
    return env


def tg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI; one that outlives TIMEOUT is made to print every thread's stack (faulthandler on
    SIGABRT), so a hang fails with where it hung."""
    child = subprocess.Popen(
        [CLI, *args],
        env={**env, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)
        stdout, stderr = child.communicate()
        raise AssertionError(f"{args} did not exit in {TIMEOUT} s\n{stdout}\n{stderr[-6000:]}") from None
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def ok(env: dict[str, str], *args: str) -> str:
    result = tg(env, *args)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """One line of error on stderr (after the line naming the database, when one was opened)."""
    assert result.returncode == code, result.stderr
    said = result.stderr.strip().splitlines()
    if said and said[0].startswith("local mode: "):
        said = said[1:]
    assert len(said) == 1, result.stderr
    assert said[0].startswith("error: ")
    assert text in said[0]
    assert "Traceback" not in result.stderr + result.stdout


def events_of(env: dict[str, str], protocol: str, *more: str) -> list[dict]:
    lines = ok(env, "protocol", "events", protocol, "--json", *more).splitlines()
    return [json.loads(line) for line in lines]


def status_of(env: dict[str, str], protocol: str) -> dict:
    return json.loads(ok(env, "protocol", "status", protocol, "--json"))


@pytest.fixture
def project_env(tmp_path, database_url):
    """A registered, ready project `demo` over a fresh pair of repositories; the env to reach it."""
    repos = make_repos(tmp_path)
    env = _env(tmp_path, database_url)
    migrating = {**env, "TASKSGODZILLA_MIGRATE_ON_START": "true"}
    out = ok(migrating, "project", "add", "demo", "--local-path", str(repos.local))
    assert "project.ready" in out
    assert out.rstrip().endswith(f"project demo ready ({repos.local})")
    return env, repos


def test_a_protocol_runs_to_completion_printing_its_events(project_env):
    env, repos = project_env
    projects = json.loads(ok(env, "project", "list", "--json"))
    assert [(p["name"], p["status"]) for p in projects] == [("demo", "ready")]
    assert ok(env, "protocol", "new", "demo", "Write two parts").startswith("created demo/0001 ")

    # Asked for INFO logs, the in-process worker's lines go to a file: none between the feed's lines.
    chatty = tg({**env, "TASKSGODZILLA_LOG_LEVEL": "INFO"}, "protocol", "run", "demo/0001")
    assert chatty.returncode == 0, chatty.stderr
    log_file = Path(env["TASKSGODZILLA_DATA_DIR"]) / "logs" / "cli.log"
    assert chatty.stderr.splitlines() == [
        f"logs below WARNING go to {log_file}",
        f"local mode: database {mask_url(env['TASKSGODZILLA_DATABASE_URL'])}",
    ]
    assert urlsplit(env["TASKSGODZILLA_DATABASE_URL"]).password not in chatty.stderr
    assert "job" in log_file.read_text()
    out = chatty.stdout
    lines = out.splitlines()
    assert lines[0].split()[1] == "protocol.created"  # its history first, then what happens now
    assert lines[1] == "demo/0001: started"
    lines = lines[1:]
    printed = [line.split()[1] for line in lines[1:-1]]
    assert printed[:4] == ["protocol.planning", "policy.applied", "agent.started", "agent.finished"]
    assert printed.count("step.completed") == 2
    assert printed[-1] == "protocol.completed"
    assert all(re.match(r"\d\d:\d\d:\d\d  \S+ +\S", line) for line in lines[1:-1]), out
    assert lines[-1].startswith(
        "demo/0001 completed: 2 steps on branch tasksgodzilla/demo/0001-write-two-parts at "
    )
    assert "\x1b[K" not in out, "the live timer is for terminals only"

    shown = status_of(env, "demo/0001")
    assert shown["ref"] == "demo/0001"
    assert shown["protocol"]["status"] == "completed"
    assert [(s["step_index"], s["status"], s["qa_verdict"], s["attempts"]) for s in shown["steps"]] == [
        (1, "completed", "pass", 1),
        (2, "completed", "pass", 1),
    ]
    pushed = git(
        "--git-dir", str(repos.origin), "rev-parse", "refs/heads/tasksgodzilla/demo/0001-write-two-parts"
    )
    assert pushed == shown["protocol"]["head_sha"] == shown["steps"][1]["commit_sha"]

    history = events_of(env, "demo/0001")
    assert history[0]["event_type"] == "protocol.created"
    assert history[-1]["event_type"] == "protocol.completed"
    assert [e["id"] for e in history] == sorted(e["id"] for e in history)
    verdicts = events_of(env, "1", "--type", "qa.verdict")
    assert [e["payload"]["verdict"] for e in verdicts] == ["pass", "pass"]

    table = ok(env, "protocol", "status", "demo/0001").splitlines()
    assert table[0] == "demo/0001  Write two parts  [completed]"
    again = ok(env, "protocol", "run", "demo/0001").splitlines()
    assert again[-2:] == ["demo/0001: already completed", lines[-1]]
    # The whole history, each event once, before the line that says where the run is.
    assert [line.split()[1] for line in again[:-2]] == [
        "protocol.created",
        *(line.split()[1] for line in lines[1:-1]),
    ]
    result = tg(env, "protocol", "cancel", "demo/0001")
    assert_one_line_error(result, 75, "cannot go from completed to cancelled")

    tail = subprocess.Popen(
        [CLI, "protocol", "events", "demo/0001", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "protocol.created" in tail.stdout.readline()
    tail.send_signal(signal.SIGINT)
    _, stderr = tail.communicate(timeout=TIMEOUT)
    assert (tail.returncode, stderr.splitlines()[-1]) == (130, "interrupted")
    assert "Traceback" not in stderr


def test_failed_qa_blocks_the_run_until_the_step_is_approved(tmp_path, database_url):
    repos = make_repos(tmp_path)
    env = _env(tmp_path, database_url, AGENT_QA_FAIL="2")
    ok(env, "project", "add", "demo", "--local-path", str(repos.local))
    assert "planning queued" in ok(env, "protocol", "new", "demo", "Write two parts", "--start")
    assert ok(env, "protocol", "plan", "demo/0001").splitlines()[-1] == "demo/0001 planned: 2 steps"

    blocked = tg(env, "protocol", "run", "demo/0001")
    second = status_of(env, "demo/0001")["steps"][1]
    assert (second["status"], second["qa_verdict"]) == ("failed", "fail")
    assert_one_line_error(
        blocked,
        75,
        f"demo/0001 is blocked: step 02 is failed (QA failed step 2); pass it: "
        f"`protocol approve {second['id']}`",
    )
    assert "protocol.blocked" in blocked.stdout.splitlines()[-1]

    approved = ok(env, "protocol", "approve", str(second["id"]), "--note", "looks right", "--by", "ops")
    assert approved.strip() == "step 02 of demo/0001 approved by ops (now completed)"
    out = ok(env, "protocol", "run", "demo/0001")
    assert "protocol.completed" in out
    assert out.splitlines()[-1].startswith("demo/0001 completed: 2 steps")
    (approval,) = events_of(env, "demo/0001", "--type", "step.approved")
    assert (approval["payload"]["by"], approval["payload"]["note"]) == ("ops", "looks right")


def test_without_automatic_qa_a_step_waits_for_a_person(project_env):
    env = {**project_env[0], "TASKSGODZILLA_AUTO_QA_AFTER_EXEC": "false", "AGENT_PLAN_STEPS": "1"}
    ok(env, "protocol", "new", "demo", "One part")
    waiting = tg(env, "protocol", "run", "demo/0001")
    (step,) = status_of(env, "demo/0001")["steps"]
    assert step["status"] == "needs_qa"
    hint = f"queue its QA with `protocol qa {step['id']}`"
    assert_one_line_error(waiting, 75, f"demo/0001 is running: step 01 is needs_qa; {hint}")

    queued = ok(env, "protocol", "qa", "demo/0001/01")
    assert queued.strip() == "step 01 of demo/0001 queued for QA (now needs_qa)"
    assert_one_line_error(tg(env, "protocol", "qa", str(step["id"])), 75, "QA of step 1 is queued already")
    out = ok(env, "protocol", "run", "demo/0001")
    assert "QA pass: step 01: pass" in out
    assert out.splitlines()[-1].startswith("demo/0001 completed: 1 step on branch")


def test_setup_waiting_for_answers_then_set_up_again(tmp_path, database_url):
    repos = make_repos(tmp_path)
    env = _env(tmp_path, database_url)
    asking = {**env, "TASKSGODZILLA_SETUP_WAIT_FOR_ANSWERS": "true"}
    waiting = tg(asking, "project", "add", "demo", "--local-path", str(repos.local))
    assert_one_line_error(waiting, 75, "project demo awaits answers to its setup questions; answer with ")
    assert "tasksgodzilla project answer demo ci_provider=none" in waiting.stderr
    assert_one_line_error(tg(env, "project", "answer", "demo", "ci_provider"), 65, "give KEY=VALUE")

    answered = ok(env, "project", "answer", "demo", "ci_provider=github", "base_branch=main", "--by", "ops")
    assert answered.strip() == "project demo is ready"
    again = ok(env, "project", "setup", "demo").splitlines()
    assert again[0] == "setup of project demo queued"
    assert [line.split()[1] for line in again[1:-1]] == [
        "project.setup_requested",
        "project.setup_started",
        "setup.engines",
        "setup.clarifications",
        "project.ready",
    ]
    (shown,) = json.loads(ok(env, "project", "list", "--json"))
    assert (shown["status"], shown["ci_provider"]) == ("ready", "github")


def _on_terminal(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal, as an operator's shell would; exit code and output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [CLI, *args], env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL
    )
    os.close(follower)
    output, deadline = b"", time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
    finally:
        os.close(leader)
    return process.wait(timeout=TIMEOUT), output.decode(errors="replace")


def test_a_terminal_shows_a_live_timer_while_an_agent_runs(project_env):
    env, _ = project_env
    env = {**env, "AGENT_SLEEP": "1.5", "AGENT_PLAN_STEPS": "1"}
    ok(env, "protocol", "new", "demo", "One slow part")
    code, output = _on_terminal(env, "protocol", "run", "demo/0001")
    assert code == 0, output
    assert re.search(r"\r[|/\\-] execution agent running [1-9]\d*s\x1b\[K", output), output
    assert "step.completed" in output
    assert "\r\x1b[K" in output, "the timer line is wiped before the next event"


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["protocol", "new", "nope", "A title"], 66, "no project named 'nope'"),
        (["protocol", "status", "42"], 66, "protocol run 42 not found"),
        (["protocol", "status", "x/y/z"], 65, "give its id or PROJECT/NNNN"),
        (["protocol", "new", "demo", "../../etc"], 65, "must not be a file path"),
        (["project", "add", "demo"], 65, "give --git-url URL or --local-path PATH"),
        (["protocol", "approve", "two"], 65, "give its id or PROJECT/NNNN/NN"),
        (["protocol", "events", "1", "--type", "step.done"], 65, "unknown event type 'step.done'"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_bad_input_is_one_line_and_an_exit_code(tmp_path, database_url, args, code, text):
    assert_one_line_error(tg(_env(tmp_path, database_url), *args), code, text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve never became healthy")


def test_without_its_own_worker_the_cli_follows_the_work_serve_does(tmp_path, database_url):
    repos = make_repos(tmp_path)
    env = _env(tmp_path, database_url)
    port = _free_port()
    serve = subprocess.Popen(
        [CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_healthy(serve, port)
        quiet = {**env, "TASKSGODZILLA_RUN_WORKER": "false"}
        ok(quiet, "project", "add", "demo", "--local-path", str(repos.local))
        ok(env, "protocol", "new", "demo", "Write two parts")
        out = ok(env, "protocol", "run", "demo/0001", "--no-worker")
        assert out.splitlines()[-1].startswith("demo/0001 completed: 2 steps")
        with psycopg.connect(database_url) as conn:
            workers = {row[0] for row in conn.execute("SELECT id FROM procrastinate_workers")}
            # A job keeps the id of the worker that ran it; a worker that has left leaves NULL.
            job_workers = {
                row[0]
                for row in conn.execute(
                    # A project registered by local path: its jobs are on this machine's queue.
                    "SELECT worker_id FROM procrastinate_jobs WHERE queue_name LIKE 'host:%'"
                )
            }
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=TIMEOUT)
    # serve's process runs two Procrastinate workers: its jobs', and the periodic duties'.
    assert len(workers) == 2, "only serve's workers are registered"
    assert len(job_workers) == 1, "every job ran on one worker"
    assert job_workers < workers, "... one of serve's"
