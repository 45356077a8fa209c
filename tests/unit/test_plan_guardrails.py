from __future__ import annotations

import copy

import pytest

from app.domain.plan import MAX_FILE_BYTES, PLAN_OUTPUT_SCHEMA, accept_plan
from app.errors import PlanRejectedError

GOOD = {
    "plan_md": "# Plan: add login\n\n1. Set up\n2. Build the form\n",
    "context_md": "# Context\n\nFlask app in app/.\n",
    "log_md": "# Log\n",
    "step_files": [
        {"filename": "01-set-up.md", "content": "# Set up the blueprint\n\n## Goal\n..."},
        {"filename": "02-login-form.md", "content": "# Build the login form\n\n## Goal\n..."},
    ],
}


def _with(**changes):
    plan = copy.deepcopy(GOOD)
    plan.update(changes)
    return plan


def test_a_good_plan_is_accepted_with_titles_and_indexes():
    plan = accept_plan(GOOD)
    assert [(s.index, s.filename, s.title) for s in plan.steps] == [
        (1, "01-set-up.md", "Set up the blueprint"),
        (2, "02-login-form.md", "Build the login form"),
    ]


def test_the_schema_is_strict_everywhere():
    def walk(schema):
        if schema.get("type") == "object":
            assert schema["additionalProperties"] is False
            assert set(schema["required"]) == set(schema["properties"])
            for child in schema["properties"].values():
                walk(child)
        if schema.get("type") == "array":
            walk(schema["items"])

    walk(PLAN_OUTPUT_SCHEMA)


@pytest.mark.parametrize(
    ("plan", "complaint"),
    [
        (None, "plan: Input should be"),
        ("not json", "plan: Input should be"),
        (_with(extra="x"), "extra: Extra inputs are not permitted"),
        ({k: v for k, v in GOOD.items() if k != "log_md"}, "log_md: Field required"),
        (_with(step_files=[]), "the plan has no steps"),
        (_with(plan_md="   "), "plan_md is empty"),
        (_with(plan_md="no heading here"), "plan_md has no heading"),
        (_with(context_md="# C\n\x00"), "context_md contains control characters"),
        (_with(log_md="# L\n" + "x" * MAX_FILE_BYTES), "log_md is larger than 64 KiB"),
        (
            _with(step_files=[{"filename": "../../x.md", "content": "# X"}]),
            "step file name '../../x.md' is not NN-short-slug.md",
        ),
        (
            _with(step_files=[{"filename": "/abs/01-x.md", "content": "# X"}]),
            "is not NN-short-slug.md",
        ),
        (
            _with(
                step_files=[
                    {"filename": "01-a.md", "content": "# A"},
                    {"filename": "03-c.md", "content": "# C"},
                ]
            ),
            "step file '03-c.md' should be numbered 02",
        ),
        (
            _with(
                step_files=[
                    {"filename": "01-a.md", "content": "# A"},
                    {"filename": "01-b.md", "content": "# B"},
                ]
            ),
            "step file '01-b.md' should be numbered 02",
        ),
        (_with(step_files=[{"filename": "01-a.md", "content": "no title"}]), "has no heading"),
        (_with(step_files=[{"filename": "01-a.md"}]), "step_files.0.content: Field required"),
        (_with(step_files=[{"filename": "01-a.md", "content": 7}]), "step_files.0.content: Input should be"),
        (
            _with(step_files=[{"filename": f"{i:02d}-s.md", "content": "# S"} for i in range(1, 42)]),
            "41 steps; at most 40",
        ),
    ],
)
def test_a_bad_plan_is_rejected_with_the_reason(plan, complaint):
    with pytest.raises(PlanRejectedError) as raised:
        accept_plan(plan)
    assert complaint in raised.value.message
    assert raised.value.details["problems"]
