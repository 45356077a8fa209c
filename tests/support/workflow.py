"""A real worker on a real database over real git repositories, for workflow tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.engines.agent_user import open_for_traversal
from app.jobs.runtime import open_runtime, start_worker, stop_worker
from app.services.context import Services
from app.store import projects as project_store
from app.store import protocols

SCRIPTED_AGENT = Path(__file__).with_name("scripted_agent.py")
AGENT_VARIABLES = (
    "AGENT_QA_FAIL",
    "AGENT_SLEEP",
    "AGENT_PLAN_STEPS",
    "AGENT_FAIL_STAGE",
    "AGENT_NO_CHANGE",
    "AGENT_PROMPT_LOG",
    "AGENT_HANG_ONCE",
    "AGENT_GATE",
    "AGENT_LEAK_PLAN",
    "AGENT_LEAK_QA",
    "AGENT_LEAK_FILES",
    "AGENT_TOKENS",
)


def shared_with_agents(path: Path, *, folder: bool = False) -> Path:
    """`path` (a file or a folder, made when missing) writable by the agents and reachable through
    the folders above it: as root, the service runs agents as another user (app.engines.agent_user)."""
    if folder:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o1777)
    else:
        path.touch()
        path.chmod(0o666)
    open_for_traversal(path.parent)
    return path


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@dataclass(frozen=True)
class Repos:
    origin: Path
    local: Path


def make_repos(root: Path) -> Repos:
    """A bare origin with one commit on main, and the operator's clone of it (the project's local path)."""
    origin = root / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    local = root / "local"
    git("clone", "--quiet", str(origin), str(local))
    (local / "README.md").write_text("demo\n")
    git("add", "-A", cwd=local)
    git("-c", "user.name=Seed", "-c", "user.email=seed@example.test", "commit", "-qm", "init", cwd=local)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=local)
    return Repos(origin, local)


def workflow_settings(root: Path, **overrides: Any) -> Settings:
    """Settings for a fast, local pipeline: the scripted agent everywhere, short timers."""
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "git_allow_local_remotes": True,
        "command_agent": [sys.executable, str(SCRIPTED_AGENT)],
        "planning_engine": "command",
        "execution_engine": "command",
        "qa_engine": "command",
        "agent_env_passthrough": ["PATH", "HOME", *AGENT_VARIABLES],
        "worker_heartbeat_seconds": 0.5,
        "stalled_after_seconds": 3,
        "scheduler_interval_seconds": 1,
        "retry_backoff_seconds": 0.1,
        "retry_backoff_max_seconds": 0.5,
        "agent_timeout_seconds": 120,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, database_url: str, *, environ: dict[str, str] | None = None, **kwargs: Any
) -> AsyncIterator[Services]:
    """Services plus a worker in this event loop, stopped when the block ends."""
    async with open_runtime(settings, database_url, environ=environ or dict(os.environ), **kwargs) as (
        app,
        svc,
    ):
        worker = start_worker(app, svc)
        try:
            yield svc
        finally:
            await stop_worker(worker)


async def wait_for(
    check: Callable[[], Awaitable[Any] | Any], *, seconds: float = 60, what: str = "condition"
) -> Any:
    """Poll `check` (a coroutine function, or a plain one) until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def settings_environment(settings: Settings) -> dict[str, str]:
    """The same settings as TASKSGODZILLA_* variables, for a worker or CLI run as a subprocess."""
    env = {}
    for name, value in settings.model_dump(mode="json", exclude_none=True).items():
        if name in {"agent_env_passthrough", "claude_allowed_tools", "local_path_roots"}:
            text = ",".join(value)
        elif isinstance(value, (list, dict)):
            text = json.dumps(value)
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        env[f"TASKSGODZILLA_{name.upper()}"] = text
    return env


async def project_ready(svc: Services, project_id: int) -> bool:
    async with svc.database.transaction() as conn:
        return (await project_store.get(conn, project_id)).status.value == "ready"


async def run_status(svc: Services, run_id: int) -> str:
    async with svc.database.transaction() as conn:
        return (await protocols.get(conn, run_id)).status.value


def agents_working_in(folder: Path) -> list[int]:
    """Scripted agents whose working directory is inside `folder` (this test's, not another run's)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                is_agent = b"scripted_agent.py" in cmdline.read()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if is_agent and cwd.startswith(str(folder)):
            found.append(int(entry))
    return found


def commit_protocol_files(repo: Path, run_name: str, files: dict[str, str]) -> str:
    """Commit `files` into `.protocols/<run_name>/` on a branch of their own in `repo` (its checkout
    untouched), as a planned run's head would hold them; the commit's sha."""
    scratch = repo.parent / f"{repo.name}-{run_name}-files"
    git("worktree", "add", "--quiet", "-b", f"files/{run_name}", str(scratch), "HEAD", cwd=repo)
    folder = scratch / ".protocols" / run_name
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    git("add", "-A", cwd=scratch)
    git("-c", "user.name=Seed", "-c", "user.email=seed@example.test", "commit", "-qm", "plan", cwd=scratch)
    sha = git("rev-parse", "HEAD", cwd=scratch).strip()
    git("worktree", "remove", "--force", str(scratch), cwd=repo)
    return sha


class NoQueue:
    """A job queue for services used directly, without a worker: nothing is ever deferred."""

    async def defer(self, work: Any) -> bool:  # pragma: no cover - nothing here defers
        return True

    async def abort(self, locks: Any) -> int:  # pragma: no cover
        return 0

    async def pending_locks(self, queueing_locks: Any) -> set[str]:  # pragma: no cover
        return set()
