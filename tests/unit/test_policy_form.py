"""The console's policy form read into a selection: fields over unedited JSON, an edited JSON box
winning, blank fields removing values, and unreadable values named by their field."""

from __future__ import annotations

import pytest

from app.domain.policy_form import PolicyFormError, form_values, selection_from_form

SHOWN = '{"plan":{"max_steps":4},"qa":{"strictness":"lenient"}}'


@pytest.mark.parametrize(
    ("given", "overrides", "json_won"),
    [
        # Unedited JSON: each field applies over it; blank ones remove their value (and empty sections).
        ({"overrides_json": SHOWN}, {}, False),
        ({"overrides_json": SHOWN, "plan.max_steps": "4"}, {"plan": {"max_steps": 4}}, False),
        (
            {
                "overrides_json": '{ "qa": {"strictness": "lenient"}, "plan": {"max_steps": 4} }',
                "qa.strictness": "lenient",
            },
            {"qa": {"strictness": "lenient"}},
            False,
        ),
        (
            {
                "overrides_json": SHOWN,
                "plan.required_sections": "Goal, Risks\nRollback,",
                "auto_merge": "false",
            },
            {"plan": {"required_sections": ["Goal", "Risks", "Rollback"]}, "auto_merge": False},
            False,
        ),
        (
            {"overrides_json": SHOWN, "checks.required": "pytest -q, -x\nruff check ."},
            {"checks": {"required": ["pytest -q, -x", "ruff check ."]}},
            False,
        ),
        # Edited JSON: as written, the fields not read.
        ({"overrides_json": '{"auto_merge": true}', "plan.max_steps": "9"}, {"auto_merge": True}, True),
        ({"plan.max_steps": "9"}, {}, True),  # emptied box: no overrides
    ],
)
def test_the_json_box_wins_only_when_edited(given, overrides, json_won):
    chosen = selection_from_form({"pack_key": "default", "overrides_shown": SHOWN, **given})
    assert chosen.overrides == overrides
    assert chosen.json_won is json_won


def test_a_saved_selection_reads_back_unchanged_with_the_chosen_keys_version():
    saved = {
        "plan": {"required_sections": ["Goal"], "max_steps": 3},
        "findings": {"blocking": ["a.b"]},
        "git": {"commit_convention": "x"},
    }
    values = form_values(saved)
    chosen = selection_from_form(
        {
            **values,
            "pack_key": "strict",
            "pack_version.strict": "1.0",
            "pack_version.default": "2.0",
            "strict": "true",
        }
    )
    assert chosen.overrides == saved  # a field the form has no input for is kept, through the JSON
    assert (chosen.pack_key, chosen.pack_version, chosen.strict, chosen.repo_local_enabled) == (
        "strict",
        "1.0",
        True,
        False,
    )
    assert selection_from_form({**values, "pack_key": "strict"}).pack_version is None  # latest active


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"pack_key": ""}, "pack_key"),
        ({"overrides_json": "{nope"}, "overrides_json"),
        ({"overrides_json": "[]"}, "overrides_json"),
        ({"overrides_json": "[" * 100_000}, "overrides_json"),
        ({"overrides_shown": "{}", "plan.max_steps": "-1"}, "plan.max_steps"),
        ({"overrides_shown": "{}", "limits.tokens_per_step": "1e9"}, "limits.tokens_per_step"),
        ({"overrides_shown": "{}", "auto_merge": "yes"}, "auto_merge"),
    ],
)
def test_an_unreadable_value_is_named_by_its_field(given, field):
    with pytest.raises(PolicyFormError) as raised:
        selection_from_form({"pack_key": "default", **given})
    assert raised.value.field == field
    assert raised.value.message.startswith(f"{field}: ")
