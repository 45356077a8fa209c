from __future__ import annotations

import re
from string import Template

import pytest

from app import prompts
from app.prompts import PromptTemplate


@pytest.mark.parametrize("name", prompts.PROMPTS + prompts.FRAGMENTS)
def test_every_template_loads_and_has_a_stable_version(name):
    template = prompts.load(name)
    assert re.fullmatch(rf"{name}@[0-9a-f]{{12}}", template.version)
    assert prompts.load(name).version == template.version


def test_the_version_follows_the_words():
    assert PromptTemplate("x", "Hello $who").version != PromptTemplate("x", "Hello, $who").version


def test_values_are_inserted_verbatim():
    planning = prompts.load("planning")
    text = planning.render(
        branch_name="0001-add-login",
        protocol_name="0001-add-login",
        task_title="Add login ($title) ${injected}",
        task_description="Use $HOME carefully",
        plan_template=prompts.load("plan_template").text,
        step_template=prompts.load("step_template").text,
        policy_requirements="- $none",
    )
    assert "Task: Add login ($title) ${injected}" in text
    assert "Use $HOME carefully" in text
    assert "## Sub-tasks" in text


def test_a_missing_value_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a value for 'step_file'"):
        prompts.load("execution").render(branch_name="b", protocol_name="p")


@pytest.mark.parametrize("name", prompts.PROMPTS)
def test_placeholders_are_the_documented_ones(name):
    found = {
        m.group("named") or m.group("braced") for m in Template.pattern.finditer(prompts.load(name).text)
    }
    expected = {
        "discovery": {"project_name", "base_branch"},
        "planning": {
            "branch_name",
            "protocol_name",
            "task_title",
            "task_description",
            "plan_template",
            "step_template",
            "policy_requirements",
        },
        "execution": {
            "branch_name",
            "protocol_name",
            "step_file",
            "step_number",
            "step_title",
            "extra_instructions",
            "policy_requirements",
        },
        "qa": {
            "branch_name",
            "protocol_name",
            "step_file",
            "step_number",
            "step_title",
            "diff_summary",
            "qa_policy",
        },
    }[name]
    assert found - {None} == expected


def test_unknown_prompt():
    with pytest.raises(ValueError, match="unknown prompt"):
        prompts.load("nope")


def test_a_version_covers_the_fragments_a_template_pastes_in():
    first = PromptTemplate("p", "Plan like this: $frag", includes=(PromptTemplate("frag", "# Goal"),))
    second = PromptTemplate("p", "Plan like this: $frag", includes=(PromptTemplate("frag", "# Aim"),))
    assert first.version != second.version
    planning = prompts.load("planning")
    assert [f.name for f in planning.includes] == ["plan_template", "step_template"]
    assert prompts.load("execution").includes == ()
