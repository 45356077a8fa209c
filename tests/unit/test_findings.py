"""Policy findings: every catalogue code comes out of at least one case, and nothing comes out of a
policy that is met."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.domain.findings import (
    CATALOGUE,
    SCOPES,
    Finding,
    blocking,
    evaluate_project,
    evaluate_protocol,
    evaluate_step,
    finding,
    from_policy_problems,
    headings,
    missing_sections,
    path_matches,
)
from app.domain.qa import read_verdict
from app.domain.qa_guardrails import check_step_descriptions, check_verdict

POLICY: dict[str, Any] = {
    "plan": {"required_sections": ["Goal", "Risks"], "max_steps": 2},
    "steps": {"required_sections": ["Objective"]},
    "checks": {"required": ["pytest -q"]},
    "paths": {"forbidden": [".github/workflows/**", "secrets/**", "**/*.pem"]},
    "findings": {"blocking": ["plan.missing_section"]},
    "onboarding": {
        "questions": [
            {"key": "test_command", "question": "How are tests run?", "required": True},
            {"key": "owner", "question": "Who owns it?", "required": False},
        ]
    },
}
GOOD_STEP = "# Step\n\n## Objective\nDo it.\n\n## Artifacts\n- `docs/out.md`\n"

# (name, evaluation, codes expected in order)
CASES: list[tuple[str, Any, list[str]]] = [
    ("onboarding answered", lambda: evaluate_project(POLICY, {"test_command": "pytest"}, {}), []),
    ("onboarding fact counts", lambda: evaluate_project(POLICY, {}, {"test_command": "make test"}), []),
    (
        "onboarding blank answer",
        lambda: evaluate_project(POLICY, {"test_command": "  "}, {}),
        ["onboarding.missing_answer"],
    ),
    (
        "no checks, no test command",
        lambda: evaluate_project({"onboarding": {}}, {}, {"ci_provider": "github"}),
        ["onboarding.no_test_command"],
    ),
    ("no checks but a test command", lambda: evaluate_project({}, {"test_command": "make"}, {}), []),
    (
        "plan complete",
        lambda: evaluate_protocol(POLICY, "# Plan\n## Goal\nx\n### risks ##\n", {"01-a.md": GOOD_STEP}),
        [],
    ),
    (
        "plan misses a section",
        lambda: evaluate_protocol(POLICY, "# Plan\n## Goal\n", {"01-a.md": GOOD_STEP}),
        ["plan.missing_section"],
    ),
    (
        "heading in a code fence does not count",
        lambda: evaluate_protocol(POLICY, "## Goal\n```\n## Risks\n```\n", {}),
        ["plan.missing_section"],
    ),
    (
        "too many steps",
        lambda: evaluate_protocol(
            POLICY, "## Goal\n## Risks\n", {f"0{i}-a.md": GOOD_STEP for i in range(1, 4)}
        ),
        ["plan.too_many_steps"],
    ),
    (
        "a step misses a section",
        lambda: evaluate_protocol(POLICY, "## Goal\n## Risks\n", {"01-a.md": "# A\n## Goal\n"}),
        ["step.missing_section"],
    ),
    ("step before it ran", lambda: evaluate_step(POLICY, GOOD_STEP, None, None, None), []),
    (
        "step ran well",
        lambda: evaluate_step(
            POLICY, GOOD_STEP, ["cd app && pytest -q tests"], ["app/x.py"], ["docs/out.md"]
        ),
        [],
    ),
    (
        "check not seen",
        lambda: evaluate_step(POLICY, GOOD_STEP, ["pytest tests"], [], ["docs/out.md"]),
        ["step.required_check_not_seen"],
    ),
    (
        "forbidden paths",
        lambda: evaluate_step(
            POLICY, GOOD_STEP, None, [".github/workflows/ci.yml", "app/secrets/x", "a/b/key.pem"], None
        ),
        ["step.forbidden_path_touched", "step.forbidden_path_touched"],
    ),
    ("artifact missing", lambda: evaluate_step(POLICY, GOOD_STEP, None, None, []), ["step.artifact_missing"]),
    (
        "step file misses a section",
        lambda: evaluate_step(POLICY, "# A\n", None, None, None),
        ["step.missing_section"],
    ),
    (
        "policy problems",
        lambda: from_policy_problems(
            [
                ("policy.repo_local_invalid", "too deep"),
                ("policy.override_refused", "paths.forbidden is locked"),
                ("policy.pack_invalid", "plan.max_steps: not an integer"),
                ("policy.unknown_engine", "engines.qa.engine: 'gpt-5' is not an engine"),
            ]
        ),
        [
            "policy.repo_local_invalid",
            "policy.override_refused",
            "policy.pack_invalid",
            "policy.unknown_engine",
        ],
    ),
    (
        "guardrails on step descriptions",
        lambda: check_step_descriptions(
            {"01-a.md": "# A\n\nDo it.\n", "02-b.md": "# B\n\nMake it nicer please.\n"}
        ),
        ["step.description_too_short", "step.description_vague"],
    ),
    (
        "guardrails on a QA verdict",
        lambda: check_verdict(
            read_verdict(
                {
                    "verdict": "pass",
                    "summary": "looks fine",
                    "findings": [{"severity": "warning", "message": "test_login fails", "file": None}],
                }
            ),
            ["app/login.py"],
        ),
        ["qa.pass_contradicted", "qa.summary_names_no_file"],
    ),
    (
        "a critical step without a distinct second opinion",
        lambda: [finding("qa.second_opinion_unavailable", "none distinct", first="codex")],
        ["qa.second_opinion_unavailable"],
    ),
    ("empty policy finds nothing to require", lambda: evaluate_protocol({}, "", {"01-a.md": ""}), []),
]


@pytest.mark.parametrize(("name", "evaluate", "codes"), CASES, ids=[c[0] for c in CASES])
def test_evaluations(name: str, evaluate: Any, codes: list[str]) -> None:
    found = evaluate()
    assert [f.code for f in found] == codes
    for f in found:
        entry = CATALOGUE[f.code]
        assert (f.severity, f.scope) == (entry.severity, entry.scope)
        assert f.message
        assert f.suggested_fix
        assert "{" not in f.suggested_fix


def test_every_catalogue_code_is_produced_by_a_case() -> None:
    produced = {f.code for _, evaluate, _ in CASES for f in evaluate()}
    assert produced == set(CATALOGUE)
    assert {entry.scope for entry in CATALOGUE.values()} <= set(SCOPES)


def test_findings_say_what_and_where() -> None:
    (missing,) = evaluate_protocol(POLICY, "## Goal\n", {})
    assert missing.metadata == {"section": "Risks"}
    assert "Risks" in missing.message
    assert "## Risks" in missing.suggested_fix
    (touched,) = evaluate_step(POLICY, GOOD_STEP, None, ["secrets/key.txt"], None)
    assert touched.metadata == {"path": "secrets/key.txt", "pattern": "secrets/**"}
    assert touched.severity == "error"


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        (".github/workflows/ci.yml", ".github/workflows/**", True),
        (".github/workflows", ".github/workflows/**", False),
        ("secrets/a/b", "secrets/**", True),
        ("x/secrets/a", "secrets/**", False),
        ("x.pem", "**/*.pem", True),
        ("a/b/x.pem", "**/*.pem", True),
        ("b.txt", "*.txt", True),
        ("a/b.txt", "*.txt", False),
        ("a/b.txt", "a/?.txt", True),
        ("a.b/c", "a?b/c", True),
        ("aXb/c", "a.b/c", False),
    ],
)
def test_path_patterns(path: str, pattern: str, matches: bool) -> None:
    assert path_matches(path, pattern) is matches


def test_sections_are_headings_any_level_any_case() -> None:
    text = "Goal\n#Goal\n###### Risks ###\n    # indented code\n## Acceptance  Criteria\n"
    assert headings(text) == ["Risks", "Acceptance  Criteria"]
    assert missing_sections(text, ["risks", "Goal", " RISKS "]) == ["Goal"]


def test_blocking_only_in_strict_mode_and_only_listed_codes() -> None:
    warn = finding("plan.too_many_steps", "3 > 2", steps=3, max_steps=2)
    block = finding("plan.missing_section", "no Risks", section="Risks")
    assert blocking([warn, block], POLICY, strict=False) is None
    assert blocking([warn, block], POLICY, strict=True) == block
    assert blocking([warn], POLICY, strict=True) is None
    assert blocking([block], {}, strict=True) is None


def test_unknown_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="not a policy finding code"):
        from_policy_problems([("plan.missing_section", "x")])
    with pytest.raises(KeyError):
        finding("no.such_code", "x")


def test_a_finding_is_frozen_json() -> None:
    f = finding("step.artifact_missing", "gone", artifact="a.md")
    assert Finding.model_validate_json(f.model_dump_json()) == f
    with pytest.raises(ValidationError, match="frozen"):
        f.code = "x"  # type: ignore[misc]
