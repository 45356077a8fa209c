"""Can an engine's executable start, and which version is it? Asked of `/health` and of project setup.

The version probe spawns a process (`codex --version` starts Node), so its answer is kept for
`PROBE_TTL_SECONDS`; callers asking meanwhile share it, and nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.engines.agent_user import AgentUser
from app.engines.process import ProcessOutcome, run_process
from app.errors import ConfigError

PROBE_TTL_SECONDS = 60.0
PROBE_TIMEOUT_SECONDS = 20.0  # a cold Node start on a loaded machine takes seconds
VERSION_CHARS = 200
DETAIL_CHARS = 500


@dataclass(frozen=True)
class EngineCheck:
    """What a probe found: `ok` (with the version when the CLI has one), `error`, or `unknown`."""

    status: Literal["ok", "error", "unknown"]
    setting: str  # the variable that chooses the executable: what to change when it is an error
    version: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, str]:
        shown = {"status": self.status, "setting": self.setting}
        if self.version is not None:
            shown["version"] = self.version
        if self.error is not None:
            shown["error"] = self.error
        return shown


class ExecutableProbe:
    """Checks one executable (`argv[0]` of an engine), caching each answer for a short while."""

    def __init__(
        self,
        executable: str,
        *,
        env: Mapping[str, str],
        setting: str,
        version_args: Sequence[str] | None = ("--version",),
        ttl_seconds: float = PROBE_TTL_SECONDS,
        user: AgentUser | None = None,
    ) -> None:
        """`user`: who the agents run as, so who must be able to run the executable."""
        self._user = user
        self._executable = executable
        self._env = dict(env)
        self._setting = setting
        self._version_args = tuple(version_args) if version_args is not None else None
        self._ttl = ttl_seconds
        self._cache: dict[Path | None, tuple[float, asyncio.Task[EngineCheck]]] = {}

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        """The executable as an agent started in `workdir` would find it (a relative path needs one)."""
        now = time.monotonic()
        cached = self._cache.get(workdir)
        if cached is None or cached[0] <= now:
            task = asyncio.ensure_future(self._probe(workdir))
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}  # forget stale ones
            self._cache[workdir] = (now + self._ttl, task)
        else:
            task = cached[1]
        return await asyncio.shield(task)  # a caller that gives up does not cancel the others' probe

    async def _probe(self, workdir: Path | None) -> EngineCheck:
        located, problem = await asyncio.to_thread(
            locate, self._executable, path=self._env.get("PATH", os.defpath), workdir=workdir
        )
        if located is None:
            if problem is None:
                return EngineCheck(
                    "unknown",
                    self._setting,
                    error="a path relative to the worktree: checked when an agent starts",
                )
            return EngineCheck("error", self._setting, error=f"{problem} (check {self._setting})")
        if self._version_args is None:
            return EngineCheck("ok", self._setting)
        return await self._version(located, self._version_args)

    async def _version(self, located: str, args: tuple[str, ...]) -> EngineCheck:
        command = " ".join((self._executable, *args))
        try:
            outcome = await run_process(
                [located, *args],
                cwd=Path(tempfile.gettempdir()),
                env=self._env,
                stdin_data=None,
                timeout_seconds=PROBE_TIMEOUT_SECONDS,
                max_output_bytes=64 * 1024,
                setting=self._setting,
                user=self._user,
            )
        except ConfigError as exc:
            return EngineCheck("error", self._setting, error=exc.message)
        problem = _version_problem(command, outcome)
        if problem is not None:
            return EngineCheck("error", self._setting, error=f"{problem} (check {self._setting})")
        lines = [line.strip() for line in outcome.stdout_lines if line.strip()]
        return EngineCheck("ok", self._setting, version=lines[0][:VERSION_CHARS])


def _version_problem(command: str, outcome: ProcessOutcome) -> str | None:
    if outcome.timed_out:
        return f"`{command}` did not answer within {PROBE_TIMEOUT_SECONDS:g} s"
    if outcome.exit_code != 0:
        said = outcome.stderr.strip().splitlines()
        detail = f": {said[-1][:DETAIL_CHARS]}" if said else ""
        return f"`{command}` exited with code {outcome.exit_code}{detail}"
    if not any(line.strip() for line in outcome.stdout_lines):
        return f"`{command}` printed no version"
    return None


def locate(executable: str, *, path: str, workdir: Path | None) -> tuple[str | None, str | None]:
    """(the file that would run, None), or (None, why not); (None, None) when it cannot be told
    without a worktree. Resolves like exec does: a name on `path`, a path with a slash as given."""
    if os.sep not in executable:
        found = shutil.which(executable, path=path)
        return (found, None) if found else (None, f"executable not found on the agents' PATH: {executable}")
    candidate = Path(executable)
    if not candidate.is_absolute():
        if workdir is None:
            return None, None
        candidate = workdir / candidate
    if not candidate.exists():
        return None, f"executable not found: {executable}"
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        return None, f"not an executable file: {executable}"
    return str(candidate), None
