"""The Codex CLI adapter: `codex exec --json` inside the worktree, in codex's own sandbox.

Behaviour of the pinned CLI (0.169.0) this relies on, each checked against the real binary:
- `-` as the prompt reads it from stdin (a prompt equal to a subcommand name is not parsed as one).
- `-s read-only` makes the worktree a read-only file system for the model's commands (bubblewrap on
  Linux); `-s workspace-write` lets them write inside `-C <dir>` only. In `exec` the approval policy
  is always "never": a refused command is reported back to the model, not to us.
- `--output-schema <file>` sends the schema to the model API as a strict `json_schema` text format;
  the final `agent_message` text is then the JSON answer.
- `--ignore-user-config` skips `$CODEX_HOME/config.toml` (auth still comes from CODEX_HOME), so
  the operator's personal settings (MCP servers, hooks, profiles) do not leak into service runs.
  `$CODEX_HOME/AGENTS.md` is still read: give the service a CODEX_HOME of its own.
- `--ignore-rules` skips user and project execpolicy `.rules` files: what the agent may run does not
  depend on files inside the repository being worked on.
- `--ephemeral` writes no session files: our (redacted) transcript is the record, and CODEX_HOME does
  not fill up with unredacted prompts.
- Outside a git repository it refuses to start ("Not inside a trusted directory"); a git worktree
  is fine. We do not pass `--skip-git-repo-check`: a worktree is always what we mean to run in.
- Its shell children run in sessions of their own (out of reach of a process-group kill), but die
  with codex, even on SIGKILL, sandboxed or not.
- It prints its own words for a 5xx from the model API ("We're currently experiencing high demand…").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.domain.agents import AgentRequest, AgentResult
from app.domain.records import AgentRunStatus
from app.domain.usage import ModelPrice
from app.engines.agent_user import AgentUser, lent_workdir, prepare_user
from app.engines.base import (
    agent_result,
    out_of_time,
    price_usage,
    refused_to_start,
    schema_file,
    transcript_of,
    without_our_variables,
)
from app.engines.codex_events import CodexEventParser, CodexSummary
from app.engines.probe import EngineCheck, ExecutableProbe
from app.engines.process import ProcessOutcome, run_process

READ_ONLY = "read-only"
WORKSPACE_WRITE = "workspace-write"
BYPASS_FLAG = "--dangerously-bypass-approvals-and-sandbox"
SETTING = "TASKSGODZILLA_CODEX_BIN"
DETAIL_CHARS = 1000


class CodexEngine:
    """Runs the Codex CLI non-interactively and reads its JSONL event stream."""

    name = "codex"
    setting = SETTING

    def __init__(
        self,
        *,
        binary: str,
        base_env: Mapping[str, str],
        prices: Mapping[str, ModelPrice],
        max_output_bytes: int,
        bypass_sandbox: bool = False,
        config_overrides: Sequence[str] = (),
        user_config: bool = False,
        user: AgentUser | None = None,
    ) -> None:
        """`config_overrides` are extra `-c key=value` pairs (a model provider, for instance);
        `user_config=True` lets codex read `$CODEX_HOME/config.toml`; `user`: who codex runs as."""
        self._binary = binary
        # Our own settings may hold credentials: never hand them to an agent.
        self._env = without_our_variables(base_env)
        if user is not None:
            self._env = user.environment(self._env)
        self._user = user
        self._prices = dict(prices)
        self._max_output_bytes = max_output_bytes
        self._bypass_sandbox = bypass_sandbox
        self._overrides = tuple(config_overrides)
        self._user_config = user_config
        self._probe = ExecutableProbe(binary, env=self._env, setting=SETTING, user=user)

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        """`codex --version`, answered from a short-lived cache."""
        return await self._probe.check(workdir)

    def command(self, request: AgentRequest, schema_file: Path | None = None) -> list[str]:
        """The argument list of one run (the prompt is not in it: it goes to stdin)."""
        argv = [self._binary, "exec", "--json", "--color", "never"]
        if self._bypass_sandbox:
            # Only for a service that is itself in an isolated container, where codex's sandbox cannot
            # start: then even planning and QA run unconfined.
            argv.append(BYPASS_FLAG)
        else:
            argv += ["-s", WORKSPACE_WRITE if request.writes else READ_ONLY]
        argv += ["-C", os.path.abspath(request.workdir), "--ephemeral", "--ignore-rules"]
        if not self._user_config:
            argv.append("--ignore-user-config")
        if request.model:
            argv += ["-m", request.model]
        if schema_file is not None:
            argv += ["--output-schema", str(schema_file)]
        for override in self._overrides:
            argv += ["-c", override]
        argv.append("-")
        return argv

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run the agent to its end; raises ConfigError when the CLI cannot start (see Engine.run).

        Cancelled, it raises CancelledError once codex and its children are gone (no transcript)."""
        parser = CodexEventParser()
        if self._user is not None:
            await prepare_user(self._user, self._env)
        async with (
            schema_file(request.output_schema, prefix="tasksgodzilla-codex-") as schema,
            lent_workdir(self._user, request.workdir, writes=request.writes),
        ):
            outcome = await run_process(
                self.command(request, schema),
                cwd=request.workdir,
                env={**self._env, **request.environment},
                stdin_data=request.prompt.encode("utf-8"),
                timeout_seconds=request.timeout_seconds,
                silence_seconds=request.silence_seconds,
                max_output_bytes=self._max_output_bytes,
                on_line=parser.feed,  # every line, also past the cap: usage and the answer come last
                setting=SETTING,
                user=self._user,
            )
        summary = parser.summary()
        if (refused := refused_to_start(self.name, outcome, SETTING)) is not None:
            raise refused
        transcript = await transcript_of(transcript_lines(outcome))
        return self._result(request, outcome, summary, transcript)

    def _result(
        self, request: AgentRequest, outcome: ProcessOutcome, summary: CodexSummary, transcript: str
    ) -> AgentResult:
        final = summary.final_message
        status, error, structured = verdict(request, outcome, summary, final)
        return agent_result(
            self.name,
            outcome,
            model=request.model,
            status=status,
            error=error,
            final_message=final,
            transcript=transcript,
            structured_output=structured,
            files_changed=worktree_paths(summary.files_changed, request.workdir),
            commands_run=list(summary.commands),
            commands_passed=list(summary.commands_passed),
            usage=summary.usage,
            cost_usd=price_usage(request.model, summary.usage, self._prices),
        )


def verdict(
    request: AgentRequest, outcome: ProcessOutcome, summary: CodexSummary, final: str | None
) -> tuple[AgentRunStatus, str | None, dict[str, Any] | None]:
    """Status, error and structured output: success needs exit 0, a completed turn and no failed one."""
    if (late := out_of_time("codex", request, outcome)) is not None:
        return AgentRunStatus.TIMED_OUT, late, None
    if summary.failure is not None:
        return AgentRunStatus.FAILED, f"codex turn failed: {summary.failure[:DETAIL_CHARS]}", None
    if outcome.exit_code != 0:
        detail = summary.stream_errors[-1] if summary.stream_errors else _last_line(outcome.stderr)
        return (
            AgentRunStatus.FAILED,
            f"codex exited with code {outcome.exit_code}: {detail[:DETAIL_CHARS]}",
            None,
        )
    if summary.turns_completed == 0:
        detail = _last_line(outcome.stderr)
        return AgentRunStatus.FAILED, f"codex exited without completing its turn: {detail}", None
    if request.output_schema is None:
        return AgentRunStatus.SUCCEEDED, None, None
    structured, problem = structured_answer(final, request.output_schema)
    if problem is not None:
        return AgentRunStatus.FAILED, problem, None
    return AgentRunStatus.SUCCEEDED, None, structured


def structured_answer(
    final: str | None, schema: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """The final message as the JSON object the schema asks for, or why it is not one."""
    if final is None:
        return None, "codex gave no final message although a JSON answer was required"
    try:
        value = json.loads(final)
    except ValueError as exc:
        return None, f"codex's final message is not JSON ({exc}): {final[:200]}"
    if not isinstance(value, dict):
        return None, f"codex's final message is JSON but not an object: {final[:200]}"
    # The model API enforces the strict schema; this cheap top-level check keeps us fail-closed.
    missing = sorted(set(schema.get("required", ())) - set(value))
    if missing:
        return None, f"codex's JSON answer lacks required keys: {', '.join(missing)}"
    if schema.get("additionalProperties") is False:
        extra = sorted(set(value) - set(schema.get("properties", {})))
        if extra:
            return None, f"codex's JSON answer has keys the schema forbids: {', '.join(extra)}"
    return value, None


def worktree_paths(paths: Sequence[str], workdir: Path) -> list[str]:
    """Paths codex reported (absolute), relative to the worktree where they lie inside it."""
    roots = {os.path.abspath(workdir), os.path.realpath(workdir)}
    shown = []
    for path in paths:
        relative = path
        for root in roots:
            if os.path.isabs(path) and os.path.commonpath([root, path]) == root:
                relative = os.path.relpath(path, root)
        shown.append(relative)
    return list(dict.fromkeys(shown))


def transcript_lines(outcome: ProcessOutcome) -> list[str]:
    """What is stored of a run: stdout as printed, then a note if it was cut, then stderr."""
    lines = list(outcome.stdout_lines)
    if outcome.truncated:
        lines.append("--- output truncated: the lines above are all that was kept ---")
    if outcome.stderr.strip():
        lines.append("--- stderr ---")
        lines += outcome.stderr.rstrip("\n").split("\n")
    return lines


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:DETAIL_CHARS] if lines else "no output"
