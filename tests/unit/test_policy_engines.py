"""Engines a policy names: checked against the known engines, merged, and a layer of every stage's choice."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.config import Settings
from app.domain.policy import UNKNOWN_ENGINE, merge
from app.domain.policy_engines import ENGINES, policy_choices, unknown_engines
from app.domain.records import Stage
from app.domain.selection import Choice, EngineChoice, EngineName
from app.services.choices import choose_stage_engine
from app.services.policy import RunPolicy
from tests.support.records import project, run, step


def test_the_known_engines_are_the_engine_names() -> None:
    assert set(ENGINES) == {name.value for name in EngineName}


def test_unknown_engine_names_are_found_wherever_a_policy_names_an_engine() -> None:
    policy = {
        "engines": {"planning": {"engine": "codex"}, "execution": {"engine": "gpt-5"}, "qa": {}},
        "qa": {"engine": "Claude", "second_opinion": {"engine": "opus", "model": None}},
    }
    assert unknown_engines(policy) == [
        ("engines.execution.engine", "gpt-5"),
        ("qa.engine", "Claude"),
        ("qa.second_opinion.engine", "opus"),
    ]
    assert unknown_engines({}) == []


def test_an_unknown_engine_of_a_layer_keeps_the_earlier_one_and_is_reported() -> None:
    pack = {"engines": {"execution": {"engine": "claude", "model": "opus"}}}
    overrides = {"engines": {"execution": {"engine": "gemini", "model": "pro"}}, "qa": {"engine": "nope"}}
    effective, problems = merge(pack, overrides)
    # the model is free text
    assert effective["engines"]["execution"] == {"engine": "claude", "model": "pro", "fallbacks": []}
    assert effective["qa"]["engine"] is None
    assert [(p.code, p.field) for p in problems] == [
        (UNKNOWN_ENGINE, "engines.execution.engine"),
        (UNKNOWN_ENGINE, "qa.engine"),
    ]
    assert "'gemini' is not an engine" in problems[0].message


def test_an_unknown_engine_in_the_pack_itself_is_dropped_and_the_rest_applies() -> None:
    pack = {"engines": {"qa": {"engine": "gpt-5", "model": "x"}}, "plan": {"max_steps": 3}}
    effective, problems = merge(pack)
    assert effective["engines"]["qa"] == {"engine": None, "model": "x", "fallbacks": []}
    assert effective["plan"]["max_steps"] == 3
    assert [p.field for p in problems] == ["engines.qa.engine"]


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("planning", [Choice("claude", "p")]),
        ("discovery", [Choice("claude", "p")]),
        ("execution", [Choice(None, "e")]),
        ("qa", [Choice("command", None), Choice("codex", "q")]),
    ],
)
def test_the_policy_says_for_each_stage(stage, expected) -> None:
    policy = {
        "engines": {
            "planning": {"engine": "claude", "model": "p"},
            "execution": {"engine": None, "model": "e"},
            "qa": {"engine": "codex", "model": "q"},
        },
        "qa": {"engine": "command", "model": None, "strictness": "normal"},
    }
    assert policy_choices(policy, stage) == expected


def test_a_recorded_unknown_engine_says_nothing_not_even_its_model() -> None:
    policy = {"engines": {"execution": {"engine": "gemini", "model": "pro"}}}
    assert policy_choices(policy, "execution") == []


SETTINGS = Settings(
    planning_engine="codex", planning_model="gpt-plan", execution_engine="codex", qa_engine="codex"
)


def _policy(**sections) -> RunPolicy:
    effective, _ = merge(sections)
    return RunPolicy(policy=effective, hash="h", strict=False, pack_key="p", pack_version="1")


def _defaults(stage: str, engine: str | None = None, model: str | None = None) -> dict:
    return {"engines": {stage: {"engine": engine, "model": model}}}


CLAUDE_EXECUTES = _defaults("execution", "claude")
SETTINGS_EXECUTE = EngineChoice("codex", SETTINGS.execution_model)


@pytest.mark.parametrize(
    ("stage", "holders", "policy", "expected"),
    [
        # Nothing but the settings.
        (Stage.EXECUTION, {}, {}, SETTINGS_EXECUTE),
        # The policy's defaults come before the settings...
        (Stage.EXECUTION, {}, _defaults("execution", "claude", "o"), EngineChoice("claude", "o")),
        (Stage.DISCOVERY, {}, _defaults("planning", "command"), EngineChoice("command", None)),
        (Stage.PLANNING, {}, _defaults("planning", None, "big"), EngineChoice("codex", "big")),
        # ... QA's own policy before the QA defaults ...
        (
            Stage.QA,
            {},
            {"qa": {"engine": "claude"}} | _defaults("qa", "command"),
            EngineChoice("claude", None),
        ),
        (Stage.QA, {}, _defaults("qa", "command", "m"), EngineChoice("command", "m")),
        # ... and after the project, the run and the step.
        (Stage.EXECUTION, {"project": {"execution_engine": "codex"}}, CLAUDE_EXECUTES, SETTINGS_EXECUTE),
        (
            Stage.EXECUTION,
            {"run": {"execution_engine": "command"}},
            CLAUDE_EXECUTES,
            EngineChoice("command", None),
        ),
        (
            Stage.EXECUTION,
            {"step": {"engine": "codex", "model": "s"}},
            CLAUDE_EXECUTES,
            EngineChoice("codex", "s"),
        ),
        (
            Stage.QA,
            {"step": {"qa_engine": "command"}},
            {"qa": {"engine": "claude"}},
            EngineChoice("command", None),
        ),
        # A model for the policy's engine is kept when a nearer layer only names a model.
        (
            Stage.EXECUTION,
            {"project": {"execution_model": "mine"}},
            _defaults("execution", "claude", "o"),
            EngineChoice("claude", "mine"),
        ),
    ],
)
def test_the_policy_comes_between_the_project_and_the_settings(stage, holders, policy, expected) -> None:
    svc = SimpleNamespace(settings=SETTINGS)
    choice = choose_stage_engine(
        svc,  # type: ignore[arg-type]
        stage,
        project(**holders.get("project", {})),
        run(**holders.get("run", {})),
        step(**holders.get("step", {})),
        policy=_policy(**policy),
    )
    assert choice == expected
