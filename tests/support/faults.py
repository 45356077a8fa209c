"""Fault injection for tests/faults/: real `tasksgodzilla` processes, the agents they leave behind,
the remote's record of pushes, and the figures each scenario reports (reading the system under
fault is in fault_probes.py).

Every process a scenario starts leads its own process group and carries FAULTS_TAG in its
environment; agents inherit the tag (it is in `agent_env_passthrough`), so a /proc scan finds what a
worker started even after the worker died. `Fleet.close()` kills every group and every tagged
process, whatever state the test ended in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from app.config import Settings
from tests.support.workflow import (
    AGENT_VARIABLES,
    settings_environment,
    shared_with_agents,
    workflow_settings,
)

CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"
TAG = "FAULTS_TAG"
# What the scripted agent may see: the usual test variables, the hang switch, and the tag.
FAULT_AGENT_ENV = ["PATH", "HOME", *AGENT_VARIABLES, TAG]
PROBE_APP = "tasksgodzilla-faults-probe"
RESULTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "faults" / "results.jsonl"


class FaultDidHarm(AssertionError):
    """A fault did what the system must survive. A known defect's test is marked
    `xfail(raises=FaultDidHarm, strict=True)`, so that a broken set-up still fails it."""


def unharmed(condition: object, what: str) -> None:
    """Raise FaultDidHarm (with `what`) unless `condition` holds."""
    if not condition:
        raise FaultDidHarm(what)


async def survives(waiting: Awaitable[Any]) -> Any:
    """Await a wait_for(...) whose timing out means the fault did harm."""
    try:
        return await waiting
    except AssertionError as exc:
        raise FaultDidHarm(str(exc)) from None


@dataclass
class Proc:
    """One process a scenario started, in its own process group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    tag: str
    killed: bool = False  # by the test: its death is no failure

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        self.killed = self.killed or sig in (signal.SIGKILL, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Fleet:
    """The processes of one scenario: workers, API servers, and the agents they start."""

    root: Path
    env: dict[str, str]
    run_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str, extra_env: Mapping[str, str] | None = None) -> Proc:
        tag = f"{self.run_tag}:{name}"
        log = self.root / f"{name}.log"
        env = {**self.env, **(extra_env or {}), TAG: tag}
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(name, popen, log, tag)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, **extra_env: str) -> Proc:
        return self.start(name, "worker", "--name", name, extra_env=extra_env)

    def server(self, port: int, name: str = "api", **extra_env: str) -> Proc:
        return self.start(name, "serve", "--port", str(port), "--no-migrate", extra_env=extra_env)

    def named(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def check(self) -> None:
        """Fail, with its log, if a process the test did not kill has exited."""
        for proc in self.procs:
            if not proc.killed and not proc.alive():
                raise AssertionError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")

    def agents(self) -> list[Agent]:
        """Live agent processes started by this fleet's processes."""
        return [a for a in tagged_agents().values() if a.tag.startswith(f"{self.run_tag}:")]

    def close(self) -> None:
        """Kill every process group this fleet started, then every agent that carries its tag."""
        for proc in self.procs:
            for sig in (signal.SIGCONT, signal.SIGKILL):  # a frozen process dies only once thawed
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=30)
        for agent in self.agents():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(agent.pid, signal.SIGKILL)


@dataclass
class Gate:
    """Holds the scripted agent's execution of chosen steps (AGENT_GATE) until the test lets it go."""

    folder: Path

    def hold(self, *steps: int) -> None:
        shared_with_agents(self.folder, folder=True)
        for step in steps:
            (self.folder / f"{step:02d}").touch()

    def waiting(self, step: int) -> int | None:
        """The pid of step's agent once it waits at the gate."""
        pid = self.folder / f"{step:02d}.pid"
        return int(pid.read_text()) if (self.folder / f"{step:02d}").exists() and pid.exists() else None

    def release(self, step: int) -> None:
        (self.folder / f"{step:02d}").unlink(missing_ok=True)


def fault_settings(root: Path, **overrides: Any) -> Settings:
    """The workflow tests' fast settings, with one job per worker and a short stall window (ten
    heartbeats: a busy machine may delay a few, never that many)."""
    values: dict[str, Any] = {
        "migrate_on_start": False,
        "worker_concurrency": 1,
        "stalled_after_seconds": 3,
        "worker_heartbeat_seconds": 0.3,
        "agent_env_passthrough": FAULT_AGENT_ENV,
    }
    return workflow_settings(root, **(values | overrides))


def fault_environment(settings: Settings, database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without TASKSGODZILLA_*, plus `settings` as variables and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_") and k != TAG}
    env |= settings_environment(settings)
    for name, value in settings:  # settings_environment masks secrets; a subprocess needs them
        if isinstance(value, SecretStr):
            env[f"TASKSGODZILLA_{name.upper()}"] = value.get_secret_value()
    return env | {"TASKSGODZILLA_DATABASE_URL": database_url} | extra


def _environ(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


@dataclass(frozen=True)
class Agent:
    pid: int
    tag: str  # the FAULTS_TAG of the process that started it: `<fleet>:<process name>`
    stage: str

    @property
    def owner(self) -> str:
        return self.tag.rsplit(":", 1)[1]


def tagged_agents() -> dict[int, Agent]:
    """Every live agent process (it has AGENT_STAGE) carrying a FAULTS_TAG."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        env = _environ(int(entry))
        if env and TAG in env and "AGENT_STAGE" in env and pid_alive(int(entry)):
            found[int(entry)] = Agent(int(entry), env[TAG], env["AGENT_STAGE"])
    return found


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def free_port() -> int:
    """A TCP port nobody listens on now (`serve` refuses port 0, so one is picked for it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_ref_log(bare: Path) -> None:
    """Make the bare remote keep a reflog: one line per ref update, so each real push is counted.

    (Hooks would not run: every git command we start turns hooks off, and the local transport passes
    that on to the receiving side.)
    """
    subprocess.run(["git", "--git-dir", str(bare), "config", "core.logAllRefUpdates", "always"], check=True)


def tagged_commits(repo: Path, ref: str, tag: str) -> int:
    """How many commits reachable from `ref` in `repo` (a bare one or a worktree) end with `tag`."""
    done = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%s", ref, "--"], capture_output=True, text=True
    )
    return sum(line.endswith(tag) for line in done.stdout.splitlines())  # no such ref: none


def pushes(bare: Path, branch: str) -> list[str]:
    """The sha each push of `branch` to the bare remote moved it to, oldest first."""
    log = bare / "logs" / "refs" / "heads" / branch
    if not log.exists():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.strip()]


def report(scenario: str, **figures: Any) -> None:
    """Print one summary line and append the figures to test-artifacts/faults/results.jsonl."""
    line = {"scenario": scenario, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
    print(f"FAULTS {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(line, default=str) + "\n")


def execution_agent(fleet: Fleet, *, besides: str | None = None) -> Agent | None:
    """A live execution agent of the fleet (started by another process than `besides`)."""
    return next((a for a in fleet.agents() if a.stage == "execution" and a.owner != besides), None)
