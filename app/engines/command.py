"""The `command` engine: any executable as a coding agent, with a small documented contract.

The executable runs in the worktree with the prompt on stdin and these variables added to its
environment: `AGENT_STAGE` (discovery | planning | execution | qa) and, when the answer must follow a
JSON Schema, `AGENT_OUTPUT_SCHEMA` (the path of a file holding that schema). Exit code 0 is success.
If its last non-empty stdout line is a JSON object made only of these keys, it is the result:

    {"final_message": "...", "structured_output": {...},
     "usage": {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}, "cost_usd": 0.0}

Otherwise the whole stdout is the final message. A run asked for a schema fails without a
`structured_output` that has the schema's required keys (and no others where it forbids them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.domain.agents import AgentRequest, AgentResult
from app.domain.records import AgentRunStatus
from app.domain.usage import CENT_FRACTION, ModelPrice, TokenUsage
from app.engines.agent_user import AgentUser, lent_workdir, prepare_user
from app.engines.base import (
    agent_result,
    out_of_time,
    price_usage,
    schema_file,
    stderr_tail,
    transcript_of,
    without_our_variables,
)
from app.engines.probe import EngineCheck, ExecutableProbe
from app.engines.process import ProcessOutcome, run_process
from app.errors import AgentError

RESULT_KEYS = frozenset({"final_message", "structured_output", "usage", "cost_usd"})
STAGE_VARIABLE = "AGENT_STAGE"
SCHEMA_VARIABLE = "AGENT_OUTPUT_SCHEMA"
SETTING = "TASKSGODZILLA_COMMAND_AGENT"


@dataclass(frozen=True)
class CommandOutput:
    """What the executable printed, read by the contract above."""

    final_message: str | None = None
    structured_output: dict[str, Any] | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: Decimal | None = None
    error: str | None = None


class CommandEngine:
    """Runs a configured executable (`argv`, never through a shell) as the agent."""

    name = "command"
    setting = SETTING

    def __init__(
        self,
        *,
        argv: Sequence[str],
        base_env: Mapping[str, str],
        prices: Mapping[str, ModelPrice],
        max_output_bytes: int,
        user: AgentUser | None = None,
    ) -> None:
        if not argv:
            raise AgentError("the command engine needs an executable to run")
        self._argv = list(argv)
        self._env = without_our_variables(base_env)
        if user is not None:
            self._env = user.environment(self._env)
        self._user = user
        self._prices = dict(prices)
        self._max_output_bytes = max_output_bytes
        # Any executable: no version to ask for, only that it is there and may be run.
        self._probe = ExecutableProbe(
            self._argv[0], env=self._env, setting=SETTING, version_args=None, user=user
        )

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        """Whether the executable exists and may be run (a relative one: inside `workdir`)."""
        return await self._probe.check(workdir)

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run the executable to its end; raises ConfigError when it cannot be started."""
        last: list[str] = []  # the last non-empty line, even when the output cap dropped it

        def remember(line: str) -> None:
            if line.strip():
                last[:] = [line]

        if self._user is not None:
            await prepare_user(self._user, self._env)
        async with (
            schema_file(request.output_schema, prefix="tasksgodzilla-schema-") as schema,
            lent_workdir(self._user, request.workdir, writes=request.writes),
        ):
            env = {**self._env, **request.environment, STAGE_VARIABLE: request.stage.value}
            if schema is not None:
                env[SCHEMA_VARIABLE] = str(schema)
            outcome = await run_process(
                self._argv,
                cwd=request.workdir,
                env=env,
                stdin_data=request.prompt.encode("utf-8"),
                timeout_seconds=request.timeout_seconds,
                silence_seconds=request.silence_seconds,
                max_output_bytes=self._max_output_bytes,
                on_line=remember,
                setting=SETTING,
                user=self._user,
            )
        lines = outcome.stdout_lines
        if outcome.truncated and last and (not lines or lines[-1] != last[0]):
            lines = [*lines, *last]
        output = await asyncio.to_thread(parse_output, lines)  # megabytes, for a loud agent
        transcript = await transcript_of(outcome.stdout_lines)
        status, error = verdict(request, outcome, output)
        cost = output.cost_usd
        if cost is None and output.usage.total_tokens:
            cost = price_usage(request.model, output.usage, self._prices)
        return agent_result(
            self.name,
            outcome,
            model=request.model,
            status=status,
            error=error,
            final_message=output.final_message,
            transcript=transcript,
            structured_output=output.structured_output,
            usage=output.usage,
            cost_usd=cost,
        )


def verdict(
    request: AgentRequest, outcome: ProcessOutcome, output: CommandOutput
) -> tuple[AgentRunStatus, str | None]:
    """Exit code 0, a well-formed result, and the structured output when a schema was given."""
    if (late := out_of_time("the agent command", request, outcome)) is not None:
        return AgentRunStatus.TIMED_OUT, late
    if outcome.exit_code != 0:
        detail = stderr_tail(outcome.stderr)
        message = f"the agent command exited with code {outcome.exit_code}"
        return AgentRunStatus.FAILED, f"{message}: {detail}" if detail else message
    if output.error is not None:
        return AgentRunStatus.FAILED, output.error
    if request.output_schema is not None:
        if output.structured_output is None:
            return (
                AgentRunStatus.FAILED,
                "the agent command gave no structured_output for the required schema",
            )
        problems = schema_violations(output.structured_output, request.output_schema)
        if problems:
            return AgentRunStatus.FAILED, "structured_output does not match the schema: " + "; ".join(
                problems
            )
    return AgentRunStatus.SUCCEEDED, None


def parse_output(lines: Sequence[str]) -> CommandOutput:
    """Read stdout: a result object on the last non-empty line, or plain text."""
    filled = [line for line in lines if line.strip()]
    if not filled:
        return CommandOutput()
    result = _result_object(filled[-1])
    if result is None:
        return CommandOutput(final_message="\n".join(lines).strip())
    before = "\n".join(filled[:-1]).strip() or None
    final = result.get("final_message", before)
    structured = result.get("structured_output")
    if final is not None and not isinstance(final, str):
        return CommandOutput(error="result line: final_message must be a string")
    if structured is not None and not isinstance(structured, dict):
        return CommandOutput(final_message=final, error="result line: structured_output must be an object")
    try:
        usage = TokenUsage.model_validate(result.get("usage") or {})
    except ValidationError:
        return CommandOutput(
            final_message=final, error="result line: usage must hold non-negative token counts"
        )
    cost = _cost(result.get("cost_usd"))
    if "cost_usd" in result and result["cost_usd"] is not None and cost is None:
        return CommandOutput(final_message=final, error="result line: cost_usd must be a non-negative number")
    return CommandOutput(final_message=final, structured_output=structured, usage=usage, cost_usd=cost)


def schema_violations(value: Any, schema: Mapping[str, Any], where: str = "$") -> list[str]:
    """A structural check only: objects, required keys, no extra keys where the schema forbids them.

    Types, enums, formats and the rest of JSON Schema are not checked here.
    """
    if schema.get("type") != "object" and "properties" not in schema:
        return []
    if not isinstance(value, dict):
        return [f"{where} must be an object"]
    properties = schema.get("properties") or {}
    problems = [f"{where}.{key} is missing" for key in schema.get("required") or [] if key not in value]
    if schema.get("additionalProperties") is False:
        problems += [f"{where}.{key} is not allowed" for key in value if key not in properties]
    for key, sub_schema in properties.items():
        if key in value and isinstance(sub_schema, Mapping):
            problems += schema_violations(value[key], sub_schema, f"{where}.{key}")
    return problems


def _result_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    # Only our keys: an agent whose answer merely happens to be JSON is read as text.
    if isinstance(value, dict) and value and set(value) <= RESULT_KEYS:
        return value
    return None


def _cost(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    if not cost.is_finite() or cost < 0:
        return None
    return cost.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)
