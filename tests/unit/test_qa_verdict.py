from __future__ import annotations

import pytest

from app.domain.qa import QA_OUTPUT_SCHEMA, Verdict, read_verdict, render_report


def test_a_clean_pass_passes():
    verdict = read_verdict(
        {
            "verdict": "pass",
            "summary": "tests added and green",
            "findings": [{"severity": "info", "message": "could use a docstring", "file": "app.py"}],
        }
    )
    assert verdict.passed
    assert verdict.findings[0].file == "app.py"


@pytest.mark.parametrize(
    ("output", "why"),
    [
        (None, "returned no verdict"),
        ({}, "malformed"),
        ({"verdict": "maybe", "summary": "?", "findings": []}, "malformed (verdict)"),
        ({"verdict": "pass", "summary": "ok"}, "malformed (findings)"),
        ({"verdict": "pass", "summary": "ok", "findings": [], "score": 9}, "malformed (score)"),
        ("pass", "malformed"),
        (
            {
                "verdict": "pass",
                "summary": "fine",
                "findings": [{"severity": "error", "message": "x", "file": None}],
            },
            "pass with error findings read as fail",
        ),
        ({"verdict": "pass", "summary": "  ", "findings": []}, "gave no summary"),
    ],
)
def test_anything_but_a_clear_pass_fails_closed(output, why):
    verdict = read_verdict(output)
    assert verdict.verdict is Verdict.FAIL
    assert why in verdict.summary


def test_the_schema_names_every_field_and_the_report_renders():
    assert QA_OUTPUT_SCHEMA["required"] == ["verdict", "summary", "findings"]
    report = render_report(
        "Add tests",
        read_verdict(
            {
                "verdict": "fail",
                "summary": "no tests",
                "findings": [{"severity": "error", "message": "tests/ is empty", "file": "tests/"}],
            }
        ),
    )
    assert report.splitlines()[0] == "# QA: Add tests"
    assert "**Verdict:** fail" in report
    assert "- **error** (`tests/`): tests/ is empty" in report
