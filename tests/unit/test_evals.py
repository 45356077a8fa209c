"""The suite format and the tally of `tasksgodzilla eval` (app.domain.evals): pure, no agent."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app import prompts
from app.domain.evals import EvalRun, parse_suite, prompt_values, summarise, summary_rows
from app.errors import InvalidInputError

SUITE = {
    "tasks": [{"name": "one", "repo": "fixtures/one", "task": "Do one.", "check": ["true"]}],
    "variants": [{"name": "a", "engine": "codex"}, {"name": "b", "engine": "command", "prompt": "p.md"}],
}


def _run(variant: str, passed: bool, tokens: int = 100, cost: str | None = "0.01", ms: int = 1000) -> EvalRun:
    return EvalRun(
        variant=variant,
        task="one",
        repeat=1,
        passed=passed,
        agent_status="succeeded",
        prompt_version="execution@000000000000",
        tokens=tokens,
        cost_usd=None if cost is None else Decimal(cost),
        duration_ms=ms,
    )


def test_a_suite_reads_from_yaml_and_json_alike():
    from_json = parse_suite("suite.json", json.dumps(SUITE))
    assert parse_suite("suite.yaml", json.dumps(SUITE)) == from_json  # JSON is YAML too
    assert [v.name for v in from_json.variants] == ["a", "b"]
    assert from_json.tasks[0].timeout_seconds == 60


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": []}, "tasks: List should have at least 1 item"),
        ({"variants": [SUITE["variants"][0]] * 2}, "two variants share a name"),
        (
            {"tasks": [{**SUITE["tasks"][0], "repo": "/etc"}]},
            "tasks.0.repo: Value error, must be a relative path",
        ),
        (
            {"tasks": [{**SUITE["tasks"][0], "check": [""]}]},
            "tasks.0.check: Value error, must be an argument list",
        ),
        (
            {"tasks": [{**SUITE["tasks"][0], "timeout_seconds": 0}]},
            "tasks.0.timeout_seconds: Input should be greater",
        ),
        (
            {"variants": [{"name": "a", "engine": "codex", "prompt": "../x.md"}]},
            "variants.0.prompt: Value error",
        ),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_a_bad_suite_says_which_field_is_wrong(change, message):
    with pytest.raises(InvalidInputError, match=r"^suite\.json: ") as raised:
        parse_suite("suite.json", json.dumps({**SUITE, **change}))
    assert message in raised.value.message
    assert raised.value.details == {"field": "suite"}


def test_a_suite_that_is_not_a_mapping_or_not_parseable_is_refused():
    with pytest.raises(InvalidInputError, match=r"suite\.yaml: suite: Input should be a valid dictionary"):
        parse_suite("suite.yaml", "- a list\n")
    with pytest.raises(InvalidInputError, match=r"suite\.json is not valid JSON"):
        parse_suite("suite.json", "{")


def test_selection_keeps_the_suite_order_and_refuses_unknown_names():
    suite = parse_suite("suite.json", json.dumps(SUITE))
    assert [v.name for v in suite.selected(["b"], []).variants] == ["b"]
    assert suite.selected([], ["one"]) == suite
    with pytest.raises(InvalidInputError, match="no task named two, three in the suite"):
        suite.selected([], ["two", "three"])


def test_the_shipped_execution_prompt_is_filled_for_a_task():
    task = parse_suite("suite.json", json.dumps(SUITE)).tasks[0]
    prompt = prompts.load("execution").render(**prompt_values(task))
    assert ".protocols/0001-one/01-one.md" in prompt
    assert "$" not in prompt


def test_each_variant_is_tallied_in_order_and_an_unknown_cost_stays_unknown():
    runs = [
        _run("b", True, tokens=300, cost=None, ms=3000),
        _run("a", True),
        _run("a", False, tokens=200, cost="0.02"),
        _run("b", False, tokens=100, cost="0.50", ms=1000),
    ]
    a, b, c = summarise(runs, ["a", "b", "c"])
    assert (a.variant, a.runs, a.passed, a.pass_rate, a.mean_tokens, a.total_tokens) == (
        "a",
        2,
        1,
        0.5,
        150,
        300,
    )
    assert a.cost_usd == Decimal("0.03")
    assert b.cost_usd is None, "one run of unknown cost makes the total unknown, never a partial sum"
    assert (b.mean_ms, b.total_ms) == (2000, 4000)
    assert (c.runs, c.pass_rate, c.cost_usd) == (0, 0, None)
    headers, rows = summary_rows([a, b])
    assert rows == [
        ["a", "2", "1", "50%", "150", "300", "$0.0300", "1.0s"],
        ["b", "2", "1", "50%", "200", "400", "unknown", "2.0s"],
    ]
    assert headers[6] == "cost"
