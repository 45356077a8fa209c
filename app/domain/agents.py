"""What an agent run is asked and what it gives back: the one result type every engine returns."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.domain.records import AgentRunStatus, Stage
from app.domain.redaction import Redactor
from app.domain.usage import TokenUsage


class AgentRequest(BaseModel):
    """One invocation: a prompt, the worktree it runs in, and what the answer must look like."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    prompt: str = Field(min_length=1)
    workdir: Path
    model: str | None = None
    # JSON Schema the final answer must satisfy (strict: additionalProperties false, all required).
    output_schema: dict[str, Any] | None = None
    timeout_seconds: float = Field(3600, gt=0)
    # A run that prints nothing for this long is stalled: killed (and retried as a timeout). None: no limit.
    silence_seconds: float | None = Field(None, gt=0)
    # What the tightest USD budget has left (enforced budgets only): an engine that can stop itself
    # there is given it (Claude Code's --max-budget-usd); the others stop at their end.
    max_budget_usd: Decimal | None = Field(None, gt=0)
    # What the tightest token budget has left (enforced budgets only): an engine that streams its usage
    # is stopped once it passes it (Claude Code); the others stop at their end.
    max_tokens: int | None = Field(None, gt=0)
    # Non-secret variables for this run's agent on top of the engine's environment (CORRELATION_ID).
    environment: dict[str, str] = Field(default_factory=dict)

    @property
    def writes(self) -> bool:
        """Only execution edits the worktree; planning, QA and discovery read it."""
        return self.stage is Stage.EXECUTION


class AgentResult(BaseModel):
    """What one agent run did, whatever the engine."""

    model_config = ConfigDict(frozen=True)

    engine: str
    model: str | None
    status: AgentRunStatus
    exit_code: int | None
    final_message: str | None = None
    structured_output: dict[str, Any] | None = None
    files_changed: list[str] = Field(default_factory=list)
    commands_run: list[str] = Field(default_factory=list)
    # Those of them the engine saw exit 0 (policy checks count only these as seen passing).
    commands_passed: list[str] = Field(default_factory=list)
    usage: TokenUsage = TokenUsage()
    cost_usd: Decimal | None = None
    duration_ms: int = 0
    error: str | None = None
    # The raw output: what the agent run's log stores, once redacted.
    transcript: str = ""
    output_truncated: bool = False
    # Which known secrets `redacted` found and replaced, by field: setting names, never values.
    secrets_redacted: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status is AgentRunStatus.SUCCEEDED


def redacted(result: AgentResult, redactor: Redactor) -> AgentResult:
    """`result` with every string an agent could have written redacted: each field, whatever its
    name, and every string inside the structured output (keys too). What was found is recorded in
    `secrets_redacted`. Megabytes of transcript take a while: call it in a thread."""
    changes: dict[str, Any] = {}
    found = dict(result.secrets_redacted)
    for name in type(result).model_fields:
        if name == "secrets_redacted":
            continue
        clean, names = redactor.redact_value(getattr(result, name))
        if names:
            changes[name] = clean
            found[name] = sorted(set(found.get(name, [])) | names)
    if not changes:
        return result
    return result.model_copy(update={**changes, "secrets_redacted": found})
