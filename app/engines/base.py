"""The engine interface, and what all engines share: environment, transcript, cost.

Engines return what the agent said, unredacted: the service redacts every field of a result in one
place as it receives it (`app.domain.agents.redacted`, called by `app.services.agents.run_agent`),
and the message of anything an engine raises.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from app.domain.agents import AgentRequest, AgentResult
from app.domain.records import AgentRunStatus
from app.domain.usage import ModelPrice, TokenUsage, cost_of
from app.engines.probe import EngineCheck
from app.engines.process import ProcessOutcome
from app.errors import ConfigError

OUR_ENV_PREFIX = "TASKSGODZILLA_"
STDERR_TAIL_CHARS = 2000
TRANSCRIPT_SLICE_LINES = 1000


class Engine(Protocol):
    """Runs one coding agent to completion and reports what it did."""

    name: str
    setting: str  # the TASKSGODZILLA_* variable that chooses its executable

    async def run(self, request: AgentRequest) -> AgentResult:
        """Never raises for an agent's own failure: that is a result with a failed status.

        An agent that cannot start (its executable missing, not runnable, or refusing our arguments)
        is a ConfigError naming the setting to fix: no retry would change it.
        """
        ...

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        """Whether its executable is there and runs (and its version), as seen from `workdir`."""
        ...


async def transcript_of(lines: Sequence[str]) -> str:
    """The agent's raw output as one text, built in a thread: it can be megabytes."""

    def build() -> str:
        return "".join(
            "".join(line + "\n" for line in lines[start : start + TRANSCRIPT_SLICE_LINES])
            for start in range(0, len(lines), TRANSCRIPT_SLICE_LINES)
        )

    return await asyncio.to_thread(build)


@asynccontextmanager
async def schema_file(schema: Mapping[str, Any] | None, *, prefix: str) -> AsyncIterator[Path | None]:
    """`schema` as a JSON file in a fresh folder outside the worktree (so the agent cannot change it
    and git never sees it), removed afterwards; None without a schema. Disk work done in a thread.
    Readable by anyone (an agent may run as another user); writable by us only."""
    if schema is None:
        yield None
        return
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix))
    try:
        path = folder / "output-schema.json"
        await asyncio.to_thread(_write_readable, folder, path, json.dumps(schema, indent=2))
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


def _write_readable(folder: Path, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    folder.chmod(0o755)


def price_usage(model: str | None, usage: TokenUsage, prices: Mapping[str, ModelPrice]) -> Decimal | None:
    """Cost from the price table, for engines that report tokens but not dollars."""
    return cost_of(usage, prices.get(model or ""))


def without_our_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment: never one of our own settings (they may hold credentials)."""
    return {name: value for name, value in env.items() if not name.upper().startswith(OUR_ENV_PREFIX)}


def stderr_tail(stderr: str) -> str:
    """The end of what a CLI said on stderr: where it explains why it stopped."""
    return stderr.strip()[-STDERR_TAIL_CHARS:]


def out_of_time(agent: str, request: AgentRequest, outcome: ProcessOutcome) -> str | None:
    """Why a run was killed for time (its wall-clock limit, or a silence past its limit); else None."""
    if outcome.timed_out:
        return f"{agent} did not finish within {request.timeout_seconds:g} s"
    if outcome.silent:
        return (
            f"{agent} was stalled: no output for {request.silence_seconds:g} s "
            "(TASKSGODZILLA_AGENT_SILENCE_SECONDS), so it was stopped"
        )
    return None


def refused_to_start(engine: str, outcome: ProcessOutcome, setting: str) -> ConfigError | None:
    """For a CLI that always prints its event stream once started: one that exited with an error
    before printing anything did not start (wrong executable, unknown option, refused as root ...)."""
    if outcome.timed_out or outcome.silent or outcome.exit_code is None or outcome.exit_code <= 0:
        return None  # killed by a signal (< 0) is not the CLI refusing us
    if any(line.strip() for line in outcome.stdout_lines):
        return None
    said = stderr_tail(outcome.stderr).splitlines()
    why = said[-1] if said else "no output"
    return ConfigError(
        f"{engine} stopped before starting (exit code {outcome.exit_code}): {why}"
        f" (check {setting} and the agent settings)",
        setting=setting,
    )


def agent_result(
    engine: str,
    outcome: ProcessOutcome,
    *,
    model: str | None,
    status: AgentRunStatus,
    error: str | None,
    final_message: str | None,
    transcript: str,
    **details: Any,
) -> AgentResult:
    """The result every engine returns: what the process did."""
    return AgentResult(
        engine=engine,
        model=model,
        status=status,
        exit_code=outcome.exit_code,
        final_message=final_message,
        error=error,
        duration_ms=outcome.duration_ms,
        transcript=transcript,
        output_truncated=outcome.truncated,
        **details,
    )
