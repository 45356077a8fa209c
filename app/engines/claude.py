"""The Claude Code adapter: `claude -p --output-format stream-json --verbose` inside the worktree.

Behaviour of the pinned CLI (2.1.197) this relies on, each checked against the real binary:
- With `-p` and no prompt argument the CLI reads the prompt from stdin up to end-of-file.
- `--permission-mode plan` refuses Write/Edit, file-writing shell commands (redirection, touch, cp,
  sed -i, rm, git add ...) and `ExitPlanMode` in print mode, for subagents too: the read-only mode.
- With `--json-schema` the model must call a `StructuredOutput` tool; the CLI validates the input
  against the schema and puts it in `result.structured_output`. A model that never calls it still
  ends in a "success" result without `structured_output`, so we check for it (fail closed).
- API errors end in a `result` with `subtype: "success"` but `is_error: true` and exit code 1.
- `--dangerously-skip-permissions` refuses to start as root.
- Without `--no-session-persistence` every run leaves a full transcript under ~/.claude/projects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from app.domain.agents import AgentRequest, AgentResult
from app.domain.records import AgentRunStatus
from app.domain.usage import ModelPrice
from app.engines.agent_user import AgentUser, lent_workdir, prepare_user
from app.engines.base import (
    agent_result,
    out_of_time,
    price_usage,
    refused_to_start,
    stderr_tail,
    transcript_of,
    without_our_variables,
)
from app.engines.claude_events import ClaudeRun, ClaudeStream, price_key
from app.engines.probe import EngineCheck, ExecutableProbe
from app.engines.process import ProcessOutcome, StopRun, run_process
from app.errors import ConfigError

READ_ONLY_MODE = "plan"
SETTING = "TASKSGODZILLA_CLAUDE_BIN"
PERMISSION_MODES = frozenset({"acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan"})


class ClaudeEngine:
    """Runs Claude Code non-interactively and reads its stream-json transcript."""

    name = "claude"
    setting = SETTING

    def __init__(
        self,
        *,
        binary: str,
        base_env: Mapping[str, str],
        prices: Mapping[str, ModelPrice],
        max_output_bytes: int,
        permission_mode: str = "acceptEdits",
        bypass_sandbox: bool = False,
        allowed_tools: Sequence[str] = (),
        user: AgentUser | None = None,
    ) -> None:
        if permission_mode not in PERMISSION_MODES:
            raise ConfigError(
                f"unknown Claude Code permission mode {permission_mode!r}",
                field="claude_permission_mode",
                allowed=sorted(PERMISSION_MODES),
            )
        if permission_mode == "bypassPermissions" and not bypass_sandbox:
            # The same as --dangerously-skip-permissions: only with the operator's explicit consent.
            raise ConfigError(
                "permission mode bypassPermissions needs agent_bypass_sandbox", field="claude_permission_mode"
            )
        self._binary = binary
        self._env = without_our_variables(base_env)
        if user is not None:
            self._env = user.environment(self._env)
        self._user = user
        self._allowed_tools = tuple(allowed_tools)
        self._prices = dict(prices)
        self._max_output_bytes = max_output_bytes
        self._permission_mode = permission_mode
        self._bypass_sandbox = bypass_sandbox
        self._probe = ExecutableProbe(binary, env=self._env, setting=SETTING, user=user)

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        """`claude --version`, answered from a short-lived cache."""
        return await self._probe.check(workdir)

    def command(self, request: AgentRequest) -> list[str]:
        """The argument list of one run (the prompt is not in it: it goes to stdin)."""
        # `--option=value`: a value starting with "-" (a model name from a policy) stays a value.
        # No session persistence: we never resume, and the CLI would otherwise keep an unredacted copy
        # of every transcript under ~/.claude/projects, growing forever. Ours is stored redacted.
        argv = [self._binary, "-p", "--output-format=stream-json", "--verbose", "--no-session-persistence"]
        if request.model:
            argv.append(f"--model={request.model}")
        if not request.writes:
            argv.append(f"--permission-mode={READ_ONLY_MODE}")  # never bypassed, whatever the settings
        elif self._bypass_sandbox:
            argv.append("--dangerously-skip-permissions")
        else:
            argv.append(f"--permission-mode={self._permission_mode}")
            if self._allowed_tools:
                # Print mode cannot ask a person, so a shell command runs only when allowed up front.
                argv.append("--allowedTools=" + ",".join(self._allowed_tools))
        if request.max_budget_usd is not None:  # the CLI stops itself there, priced by its own table
            argv.append(f"--max-budget-usd={request.max_budget_usd:f}")
        if request.output_schema is not None:
            argv.append("--json-schema=" + json.dumps(request.output_schema, separators=(",", ":")))
        return argv

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run the agent to its end; raises ConfigError when the CLI cannot start (see Engine.run)."""
        # The prompt goes to stdin, which run_process closes right after it: the CLI reads to EOF and
        # nothing is left open for it to wait on. Not argv: Linux caps one argument at 128 KiB (long
        # prompts fail with E2BIG; verified), and a positional prompt is open to option parsing.
        stream = ClaudeStream(request.workdir, request.workdir.resolve())
        if self._user is not None:
            await prepare_user(self._user, self._env)
        async with lent_workdir(self._user, request.workdir, writes=request.writes):
            outcome = await run_process(
                self.command(request),
                cwd=request.workdir,
                env={**self._env, **request.environment},
                stdin_data=request.prompt.encode("utf-8"),
                timeout_seconds=request.timeout_seconds,
                silence_seconds=request.silence_seconds,
                max_output_bytes=self._max_output_bytes,
                # Every line, also past the cap (the result line comes last); stopped at a token budget.
                on_line=_capped(stream, request.max_tokens),
                setting=SETTING,
                user=self._user,
            )
        parsed = stream.finish()
        if (refused := refused_to_start(self.name, outcome, SETTING)) is not None:
            raise refused
        transcript = await transcript_of(outcome.stdout_lines)
        status, error = verdict(request, outcome, parsed)
        model = parsed.model or request.model  # the CLI resolves aliases such as "sonnet"
        cost = parsed.cost_usd
        if cost is None:
            cost = price_usage(price_key(model), parsed.usage, self._prices)
        return agent_result(
            self.name,
            outcome,
            model=model,
            status=status,
            error=error,
            final_message=parsed.final_message,
            transcript=transcript,
            structured_output=parsed.structured_output,
            files_changed=parsed.files_changed,
            commands_run=parsed.commands_run,
            commands_passed=parsed.commands_run,  # only calls that did not fail are listed
            usage=parsed.usage,
            cost_usd=cost,
        )


def _capped(stream: ClaudeStream, max_tokens: int | None) -> Callable[[str], None]:
    """`stream.feed`, stopping the run once its messages' usage passes `max_tokens` (a token budget)."""
    if max_tokens is None:
        return stream.feed

    def feed(line: str) -> None:
        stream.feed(line)
        used = stream.usage_so_far.total_tokens
        if used > max_tokens:
            raise StopRun(f"claude was stopped at {used} tokens: its token budget had {max_tokens} left")

    return feed


def verdict(
    request: AgentRequest, outcome: ProcessOutcome, parsed: ClaudeRun
) -> tuple[AgentRunStatus, str | None]:
    """Success only on a clean `result` line, exit code 0, and the structured output if one was asked."""
    if outcome.stopped is not None:
        return AgentRunStatus.FAILED, outcome.stopped
    if (late := out_of_time("claude", request, outcome)) is not None:
        return AgentRunStatus.TIMED_OUT, late
    if not parsed.has_result:
        detail = stderr_tail(outcome.stderr) or "no output"
        return AgentRunStatus.FAILED, f"claude exited ({outcome.exit_code}) without a result: {detail}"
    if not parsed.succeeded:
        return AgentRunStatus.FAILED, parsed.error
    if outcome.exit_code != 0:
        return AgentRunStatus.FAILED, f"claude reported success but exited with code {outcome.exit_code}"
    if request.output_schema is not None and parsed.structured_output is None:
        return AgentRunStatus.FAILED, "claude gave no structured output although a JSON schema was required"
    return AgentRunStatus.SUCCEEDED, None
