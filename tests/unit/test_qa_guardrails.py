"""Guardrails on QA verdicts and step descriptions: each a catalogue finding, and none on sound ones."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.findings import CATALOGUE
from app.domain.qa import read_verdict
from app.domain.qa_guardrails import check_step_description, check_step_descriptions, check_verdict

FILES = ["src/app/login.py", "tests/test_login.py"]


def _verdict(verdict: str, summary: str, *findings: tuple[str, str, str | None]) -> Any:
    return read_verdict(
        {
            "verdict": verdict,
            "summary": summary,
            "findings": [{"severity": s, "message": m, "file": f} for s, m, f in findings],
        }
    )


def _codes(found: list[Any]) -> list[str]:
    for f in found:
        assert (f.severity, f.scope) == (CATALOGUE[f.code].severity, CATALOGUE[f.code].scope)
        assert "{" not in f.suggested_fix
    return [f.code for f in found]


@pytest.mark.parametrize(
    ("verdict", "codes"),
    [
        (_verdict("pass", "login.py checks the password; tests added"), []),
        (_verdict("pass", "all good", ("info", "naming", "tests/test_login.py")), []),  # by a finding's file
        (_verdict("pass", "src/app/login.py is right"), []),  # by path
        (_verdict("pass", "LOGIN.PY is right"), []),  # file names compare case-insensitively
        (_verdict("pass", "looks fine"), ["qa.summary_names_no_file"]),
        (_verdict("pass", "xlogin.py.bak is fine"), ["qa.summary_names_no_file"]),  # not the file's name
        (_verdict("fail", "broken somewhere"), ["qa.summary_names_no_file"]),
        (
            _verdict("pass", "login.py ok", ("warning", "test_login fails on empty input", None)),
            ["qa.pass_contradicted"],
        ),
        (
            _verdict("pass", "login.py ok", ("info", "the logout half is not implemented", None)),
            ["qa.pass_contradicted"],
        ),
        (_verdict("pass", "login.py: the goal is not met"), ["qa.pass_contradicted"]),
        (_verdict("pass", "login.py: `pytest -q` did not pass"), ["qa.pass_contradicted"]),
        (_verdict("pass", "login.py: the test that failed before passes"), []),  # "failed": findings only
        (_verdict("pass", "login.py ok", ("info", "no test fails any more", None)), []),  # negated
        (_verdict("pass", "login.py ok", ("info", "nothing here failed", None)), []),
        (_verdict("fail", "login.py: the goal is not met"), []),  # a fail says so already
    ],
)
def test_verdict_guardrails(verdict, codes):
    assert _codes(check_verdict(verdict, FILES)) == codes


def test_a_commit_that_changed_nothing_needs_no_file_named():
    assert check_verdict(_verdict("pass", "nothing to change"), []) == []


def test_a_contradiction_says_what_and_where():
    (found,) = check_verdict(_verdict("pass", "login.py: the goal is not met"), FILES)
    assert found.metadata == {"phrase": "is not met", "where": "summary"}
    assert "'is not met'" in found.suggested_fix


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("# Write hello\n\n## Goal\nhello.txt says hello.\n", []),
        ("# Part\n\n## Goal\nWrite part 1 in `work/01.txt`.\n", []),
        ("# Login\n\nAdd a login form under src/app.\n", []),
        ("# Tidy\n\nTidy up the code.\n\n## Acceptance\nNothing else changes behaviour.\n", []),
        ("# Tidy\n\nTidy up the code so the suite still passes; tests must stay green.\n", []),
        ("# Run\n\nRun the formatter:\n\n```\nruff format .\n```\n", []),
        ("# Step\n", ["step.description_too_short"]),
        ("# Step\n\n## Goal\n\nDo it.\n", ["step.description_too_short"]),
        ("# Step\n\nMake the thing nicer overall.\n", ["step.description_vague"]),
        ("# Step\n\n```\n# not a heading\n```\n\nImprove it a lot.\n", []),  # a fenced block names a command
    ],
)
def test_step_description_guardrails(text, codes):
    assert _codes(check_step_description("01-step.md", text)) == codes


def test_step_description_findings_name_their_file_in_order():
    found = check_step_descriptions({"02-b.md": "# B\n", "01-a.md": "# A\n"})
    assert [f.metadata["step_file"] for f in found] == ["01-a.md", "02-b.md"]
    assert "01-a.md" in found[0].suggested_fix
