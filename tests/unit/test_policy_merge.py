"""Policy merge: precedence, locked fields, layer validation, and the hash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.domain.policy import (
    OVERRIDE_REFUSED,
    PACK_INVALID,
    REPO_LOCAL_INVALID,
    merge,
    pack_schema,
    policy_hash,
    validate_pack,
)

PACK = {
    "plan": {"required_sections": ["Goal", "Steps"], "max_steps": 10},
    "limits": {"tokens_per_step": 1000, "usd_per_protocol": 5},
    "qa": {"strictness": "normal"},
    "paths": {"forbidden": [".github/workflows/**"]},
    "auto_merge": False,
    "git": {"commit_convention": "conventional"},
    "locked": [
        "plan.required_sections",
        "limits",
        "qa.strictness",
        "auto_merge",
        "paths",
        "git.commit_convention",
    ],
}


def _at(policy: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        policy = policy[part]
    return policy


@pytest.mark.parametrize(
    ("overrides", "repo", "path", "expected"),
    [
        ({"plan": {"max_steps": 20}}, None, "plan.max_steps", 20),  # not locked: override wins
        ({"plan": {"max_steps": 20}}, {"plan": {"max_steps": 3}}, "plan.max_steps", 3),  # repo-local is last
        (None, {"checks": {"required": ["pytest -q"]}}, "checks.required", ["pytest -q"]),
        (
            {"plan": {"required_sections": ["Goal", "Steps", "Risks"]}},
            None,
            "plan.required_sections",
            ["Goal", "Steps", "Risks"],
        ),
        ({"limits": {"tokens_per_step": 500}}, None, "limits.tokens_per_step", 500),  # lower: tighter
        (
            None,
            {"limits": {"tokens_per_protocol": 9000}},
            "limits.tokens_per_protocol",
            9000,
        ),  # none yet: any
        ({"qa": {"strictness": "strict"}}, None, "qa.strictness", "strict"),
        (
            {"paths": {"forbidden": [".github/workflows/**", "secrets/**"]}},
            None,
            "paths.forbidden",
            [".github/workflows/**", "secrets/**"],
        ),
        ({"description": "ours"}, None, "description", "ours"),
    ],
)
def test_later_layers_win_where_nothing_is_loosened(overrides, repo, path, expected) -> None:
    effective, problems = merge(PACK, overrides, repo)
    assert problems == []
    assert _at(effective, path) == expected


@pytest.mark.parametrize(
    ("layer", "path", "kept"),
    [
        (
            {"plan": {"required_sections": ["Goal"]}},
            "plan.required_sections",
            ["Goal", "Steps"],
        ),  # list shrinks
        ({"limits": {"tokens_per_step": 5000}}, "limits.tokens_per_step", 1000),  # number rises
        ({"limits": {"tokens_per_step": None}}, "limits.tokens_per_step", 1000),  # back to no limit
        (
            {"limits": {"usd_per_protocol": 6}},
            "limits.usd_per_protocol",
            5.0,
        ),  # a locked section locks its fields
        ({"qa": {"strictness": "lenient"}}, "qa.strictness", "normal"),
        ({"auto_merge": True}, "auto_merge", False),
        ({"git": {"commit_convention": "none"}}, "git.commit_convention", "conventional"),
        ({"paths": {"forbidden": []}}, "paths.forbidden", [".github/workflows/**"]),
    ],
)
@pytest.mark.parametrize("as_repo_local", [False, True])
def test_a_locked_field_is_not_loosened_and_the_refusal_is_reported(layer, path, kept, as_repo_local) -> None:
    extra = {"plan": {"max_steps": 7}}  # the rest of the layer still applies
    layer = {**layer, **extra} if "plan" not in layer else {"plan": {**layer["plan"], "max_steps": 7}}
    effective, problems = merge(PACK, None, layer) if as_repo_local else merge(PACK, layer, None)
    assert _at(effective, path) == kept
    assert effective["plan"]["max_steps"] == 7
    assert [(p.code, p.field) for p in problems] == [(OVERRIDE_REFUSED, path)]
    assert ("repository" if as_repo_local else "project overrides") in problems[0].message


def test_locks_accumulate_an_override_locks_against_the_repository() -> None:
    effective, problems = merge(
        PACK, {"locked": ["plan.max_steps"]}, {"plan": {"max_steps": 50}, "locked": []}
    )
    assert effective["plan"]["max_steps"] == 10
    assert [p.field for p in problems] == ["plan.max_steps"]
    assert set(PACK["locked"]) | {"plan.max_steps"} == set(effective["locked"])


@pytest.mark.parametrize(
    ("overrides", "repo", "code"),
    [
        ({"plan": {"max_step": 3}}, None, OVERRIDE_REFUSED),  # unknown key
        ({"plan": {"max_steps": "3"}}, None, OVERRIDE_REFUSED),  # wrong type, never coerced
        (None, {"auto_merge": "yes"}, REPO_LOCAL_INVALID),
        (None, {"locked": ["nope"]}, REPO_LOCAL_INVALID),
        (None, {"qa": {"strictness": "paranoid"}}, REPO_LOCAL_INVALID),
        (None, ["not", "a", "mapping"], REPO_LOCAL_INVALID),
    ],
)
def test_an_invalid_layer_is_ignored_whole_and_reported(overrides, repo, code) -> None:
    effective, problems = merge(PACK, overrides, repo)
    assert effective == merge(PACK)[0]
    assert problems
    assert all(p.code == code for p in problems)


def test_an_invalid_pack_falls_back_to_defaults_and_says_so() -> None:
    effective, problems = merge({"plan": {"required_sections": "Goal"}})
    assert effective == validate_pack({})
    assert [p.code for p in problems] == [PACK_INVALID]


def test_the_effective_policy_has_every_section_with_defaults() -> None:
    effective, _ = merge({}, {"qa": {"second_opinion": {"engine": "claude"}}})
    assert set(effective) == set(pack_schema()["properties"])
    assert effective["qa"]["second_opinion"] == {"engine": "claude", "model": None}
    assert effective["engines"]["qa"] == {"engine": None, "model": None, "fallbacks": []}


def test_a_pack_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        validate_pack({"requirements": {}})


def test_the_hash_is_stable_under_key_order_and_whitespace() -> None:
    effective, _ = merge(PACK, {"plan": {"max_steps": 4}})
    reordered = json.loads(
        json.dumps(effective, indent=7), object_pairs_hook=lambda pairs: dict(reversed(pairs))
    )
    assert list(reordered) != list(effective)
    assert policy_hash(reordered) == policy_hash(effective)
    assert len(policy_hash(effective)) == 64


def test_the_hash_changes_with_the_policy() -> None:
    assert policy_hash(merge(PACK)[0]) != policy_hash(merge(PACK, {"plan": {"max_steps": 4}})[0])


def test_the_schema_describes_the_pack() -> None:
    schema = pack_schema()
    assert schema["additionalProperties"] is False
    assert {"plan", "qa", "limits", "locked", "auto_merge"} <= set(schema["properties"])
