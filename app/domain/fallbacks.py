"""Fallbacks: when a stage's agent fails for a reason of its engine, the next engine or model is tried.

A stage has an ordered list of fallbacks (its policy's `engines.<stage>.fallbacks`, else the
`TASKSGODZILLA_ENGINE_FALLBACKS` setting), each `engine` or `engine:model` (no model: the engine's
own default). An *engine reason* is one another engine or model could get past: the engine could not
start, crashed without an answer, timed out, was rate limited or overloaded, or does not serve the
model. Not one: a cancellation, a budget stop, a run that answered badly (another model is no
cure for a bad task, and trying it would spend twice).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from app.domain.records import AgentRunStatus
from app.domain.selection import EngineChoice, EngineName
from app.errors import AgentError, ConfigError

MAX_FALLBACKS = 5


class EngineReason(StrEnum):
    NOT_STARTED = "could not start"
    CRASHED = "crashed"
    TIMED_OUT = "timed out"
    RATE_LIMITED = "rate limited"
    MODEL_UNAVAILABLE = "model unavailable"


# Words the engines pass through from the model APIs (OpenAI, Anthropic) and their own wording.
_RATE_LIMITED = re.compile(
    r"rate.?limit|too many requests|\b429\b|overloaded|\b529\b|quota|usage limit|capacity",
    re.IGNORECASE,
)
_MODEL_UNAVAILABLE = re.compile(
    r"model_not_found|(unknown|invalid|unsupported|unavailable) model|model\b[^.\n]{0,80}"
    r"\b(not found|does not exist|not supported|not available|unavailable|is not a valid)|HTTP 404\b",
    re.IGNORECASE,
)
# The runner's own stop at a token budget (app/engines/claude.py) and Claude Code's at its USD cap.
_BUDGET_STOP = re.compile(r"budget", re.IGNORECASE)


def parse_choice(text: str) -> EngineChoice:
    """`engine` or `engine:model` as a choice; a ValueError naming the engines when it is not one."""
    engine, _, model = text.strip().partition(":")
    if engine not in {name.value for name in EngineName}:
        known = ", ".join(name.value for name in EngineName)
        raise ValueError(f"{text[:80]!r}: the engine must be one of {known} (`engine` or `engine:model`)")
    return EngineChoice(engine, model.strip() or None)


def checked_choice_text(text: str) -> str:
    """A setting's fallback entry, checked (a validator: the text stays as written)."""
    parse_choice(text)
    return text.strip()


# A setting's list of one stage (TASKSGODZILLA_ENGINE_FALLBACKS), each entry checked.
StageFallbacks = Annotated[
    list[Annotated[str, AfterValidator(checked_choice_text)]], Field(max_length=MAX_FALLBACKS)
]


def fallback_list(primary: EngineChoice, candidates: Iterable[EngineChoice]) -> tuple[EngineChoice, ...]:
    """The fallbacks to try after `primary`, in order: repeats and the primary itself left out, at
    most MAX_FALLBACKS (each is one more agent run and its cost)."""
    seen = {(primary.engine, primary.model)}
    chosen: list[EngineChoice] = []
    for candidate in candidates:
        key = (candidate.engine, candidate.model)
        if key not in seen:
            seen.add(key)
            chosen.append(EngineChoice(candidate.engine, candidate.model))
    return tuple(chosen[:MAX_FALLBACKS])


def start_failure_reason(error: BaseException) -> EngineReason | None:
    """Why an exception raised as an engine was started is the engine's fault (its executable is
    missing, not runnable, not configured), or None (a cancellation, a budget, a bug of ours)."""
    return EngineReason.NOT_STARTED if isinstance(error, ConfigError | AgentError) else None


def result_failure_reason(
    status: AgentRunStatus,
    error: str | None,
    *,
    exit_code: int | None,
    answer: str | None,
    structured: bool,
) -> EngineReason | None:
    """Why a finished agent run failed for an engine reason, or None. `answer` is its final message,
    `structured` whether it gave a structured output: a run that answered and failed answered badly,
    and an error quoting the answer ("not JSON: ...") is read without the quote (a plan about rate
    limits is no rate limit)."""
    if status is AgentRunStatus.TIMED_OUT:
        return EngineReason.TIMED_OUT
    if status is not AgentRunStatus.FAILED:
        return None
    text = error or ""
    if answer:
        text = text.replace(answer, "").replace(answer[:200], "")
    if _BUDGET_STOP.search(text):
        return None
    if _RATE_LIMITED.search(text):
        return EngineReason.RATE_LIMITED
    if _MODEL_UNAVAILABLE.search(text):
        return EngineReason.MODEL_UNAVAILABLE
    if not answer and not structured and exit_code not in (0, None):
        return EngineReason.CRASHED
    return None
