"""Fallbacks: which failures are the engine's (try the next), and which engines and models come next."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.domain.fallbacks import (
    MAX_FALLBACKS,
    EngineReason,
    fallback_list,
    parse_choice,
    result_failure_reason,
    start_failure_reason,
)
from app.domain.policy import UNKNOWN_ENGINE, merge, validate_pack
from app.domain.policy_engines import policy_fallbacks, unknown_engines
from app.domain.records import AgentRunStatus as R
from app.domain.records import Stage
from app.domain.selection import Choice, EngineChoice
from app.errors import AgentError, BudgetExceededError, ConfigError
from app.services.choices import choose_stage_engine
from app.services.policy import RunPolicy
from tests.support.records import project, run, step

PLAN = '{"plan_md": "# Plan: add a rate limit to the API (429 Too Many Requests)"}'


@pytest.mark.parametrize(
    ("status", "error", "exit_code", "answer", "expected"),
    [
        # What the real CLIs say (codex 0.169 against the scripted endpoint; Claude Code's result line).
        (R.FAILED, "codex turn failed: exceeded retry limit, last status: 429 Too Many Requests", 1, None,
         EngineReason.RATE_LIMITED),
        (R.FAILED, "codex turn failed: unexpected status 503 Service Unavailable: overloaded, url: x", 1,
         None, EngineReason.RATE_LIMITED),
        (R.FAILED, "codex turn failed: You exceeded your current quota, please check your plan", 1, None,
         EngineReason.RATE_LIMITED),
        (R.FAILED, "claude failed (success, HTTP 429): API Error: 429 rate_limit_error", 1,
         "API Error: 429 rate_limit_error", EngineReason.RATE_LIMITED),
        (R.FAILED, "claude failed (success, HTTP 529): API Error: 529 Overloaded", 1,
         "API Error: 529 Overloaded", EngineReason.RATE_LIMITED),
        (R.FAILED, "codex turn failed: The model `nope` does not exist or you do not have access to it.", 1,
         None, EngineReason.MODEL_UNAVAILABLE),
        (R.FAILED, "claude failed (success, HTTP 404): API Error: 404 model: claude-nope", 1,
         "API Error: 404 model: claude-nope", EngineReason.MODEL_UNAVAILABLE),
        (R.FAILED, "codex exited with code 101: thread 'main' panicked", 101, None, EngineReason.CRASHED),
        (R.FAILED, "claude exited (-9) without a result: no output", -9, None, EngineReason.CRASHED),
        (R.TIMED_OUT, "codex did not finish within 60 s", None, None, EngineReason.TIMED_OUT),
        # Not the engine's fault: another engine would not help.
        (R.SUCCEEDED, None, 0, "done", None),
        (R.CANCELLED, "cancelled: its job was aborted", None, None, None),
        (R.FAILED, "claude was stopped at 900 tokens: its token budget had 500 left", -15, None, None),
        (R.FAILED, "claude failed (error_max_budget_usd): spent 0.51", 1, None, None),
        (R.FAILED, "the agent command gave no structured_output for the required schema", 0, "hi", None),
        (R.FAILED, "codex gave no final message although a JSON answer was required", 0, None, None),
        (R.FAILED, "claude failed (success, HTTP 400): API Error: 400 bad request", 1,
         "API Error: 400 bad request", None),
        # A bad answer quoting words of a rate limit is still a bad answer.
        (R.FAILED, f"codex's final message is JSON but not an object: {PLAN[:200]}", 0, PLAN, None),
    ],
)  # fmt: skip
def test_which_failures_are_the_engines(status, error, exit_code, answer, expected) -> None:
    reason = result_failure_reason(status, error, exit_code=exit_code, answer=answer, structured=False)
    assert reason == expected


def test_a_run_that_answered_with_its_structured_output_did_not_crash() -> None:
    assert result_failure_reason(R.FAILED, "x", exit_code=1, answer=None, structured=True) is None
    assert result_failure_reason(R.FAILED, "x", exit_code=1, answer=None, structured=False) == "crashed"


def test_an_engine_that_cannot_start_falls_back_but_a_budget_or_a_cancellation_does_not() -> None:
    assert start_failure_reason(ConfigError("agent executable not found: codex")) == "could not start"
    assert start_failure_reason(AgentError("agent working directory does not exist")) == "could not start"
    assert start_failure_reason(BudgetExceededError("step budget spent")) is None
    assert start_failure_reason(asyncio.CancelledError()) is None
    assert start_failure_reason(RuntimeError("a bug of ours")) is None


def test_a_fallback_is_an_engine_and_maybe_a_model() -> None:
    assert parse_choice("claude:claude-sonnet-4-5") == EngineChoice("claude", "claude-sonnet-4-5")
    assert parse_choice(" command ") == EngineChoice("command", None)
    assert parse_choice("codex:") == EngineChoice("codex", None)
    with pytest.raises(ValueError, match="one of codex, claude, command"):
        parse_choice("gpt-5")


def test_the_list_leaves_out_repeats_and_the_primary_and_stops_at_the_most() -> None:
    primary = EngineChoice("codex", "a")
    candidates = [EngineChoice("codex", "a"), EngineChoice("codex", "b"), EngineChoice("codex", "b")]
    candidates += [EngineChoice("command", str(n)) for n in range(10)]
    chosen = fallback_list(primary, candidates)
    assert chosen[0] == EngineChoice("codex", "b")
    assert len(chosen) == MAX_FALLBACKS
    assert primary not in chosen


def test_the_setting_is_checked_per_stage() -> None:
    settings = Settings(engine_fallbacks={"planning": ["claude:sonnet", "command"]})
    assert settings.engine_fallbacks == {"planning": ["claude:sonnet", "command"]}
    with pytest.raises(ValidationError, match="must be one of codex, claude, command"):
        Settings(engine_fallbacks={"qa": ["gemini"]})
    with pytest.raises(ValidationError):
        Settings(engine_fallbacks={"review": ["codex"]})
    with pytest.raises(ValidationError):
        Settings(engine_fallbacks={"qa": ["command"] * (MAX_FALLBACKS + 1)})


def test_a_pack_lists_fallbacks_per_stage_and_an_unknown_engine_among_them_is_dropped() -> None:
    pack = {"engines": {"execution": {"fallbacks": [{"engine": "claude", "model": "opus"}]}}}
    assert validate_pack(pack)["engines"]["execution"]["fallbacks"] == [{"engine": "claude", "model": "opus"}]
    overrides = {
        "engines": {
            "execution": {"fallbacks": [{"engine": "gemini", "model": "pro"}, {"engine": "command"}]},
            "qa": {"fallbacks": [{"engine": "opus"}]},
        }
    }
    assert unknown_engines(overrides) == [
        ("engines.execution.fallbacks.0.engine", "gemini"),
        ("engines.qa.fallbacks.0.engine", "opus"),
    ]
    effective, problems = merge(pack, overrides)
    assert effective["engines"]["execution"]["fallbacks"] == [{"engine": "command", "model": None}]
    assert effective["engines"]["qa"]["fallbacks"] == []
    assert [(p.code, p.field) for p in problems] == [
        (UNKNOWN_ENGINE, "engines.execution.fallbacks.0.engine"),
        (UNKNOWN_ENGINE, "engines.qa.fallbacks.0.engine"),
    ]
    effective, problems = merge({"engines": {"qa": {"fallbacks": [{"engine": "x"}, {"engine": "codex"}]}}})
    assert effective["engines"]["qa"]["fallbacks"] == [{"engine": "codex", "model": None}]
    assert [p.field for p in problems] == ["engines.qa.fallbacks.0.engine"]
    with pytest.raises(ValidationError):
        validate_pack({"engines": {"qa": {"fallbacks": [{"engine": "codex"}] * (MAX_FALLBACKS + 1)}}})


def test_discovery_uses_the_planning_fallbacks_and_a_recorded_unknown_one_is_skipped() -> None:
    policy = {
        "engines": {"planning": {"fallbacks": [{"engine": "nope"}, {"engine": "claude", "model": "m"}]}}
    }
    assert policy_fallbacks(policy, "discovery") == [Choice("claude", "m")]
    assert policy_fallbacks(policy, "qa") == []


def _choose(stage: Stage, settings: Settings, policy: dict) -> EngineChoice:
    effective, _ = merge(policy)
    return choose_stage_engine(
        SimpleNamespace(settings=settings),  # type: ignore[arg-type]
        stage,
        project(),
        run(),
        step(),
        policy=RunPolicy(policy=effective, hash="h", strict=False, pack_key="p", pack_version="1"),
    )


def test_a_stage_takes_its_policys_fallbacks_else_the_settings() -> None:
    settings = Settings(
        execution_engine="codex",
        execution_model="m",
        engine_fallbacks={"execution": ["codex:m", "claude:sonnet", "command"]},
    )
    # The settings' list, less the primary itself.
    assert _choose(Stage.EXECUTION, settings, {}).fallbacks == (
        EngineChoice("claude", "sonnet"),
        EngineChoice("command", None),
    )
    policy = {"engines": {"execution": {"fallbacks": [{"engine": "claude", "model": "opus"}]}}}
    chosen = _choose(Stage.EXECUTION, settings, policy)
    assert (chosen.engine, chosen.model) == ("codex", "m")
    assert chosen.fallbacks == (EngineChoice("claude", "opus"),)
    assert _choose(Stage.QA, settings, {}).fallbacks == ()
