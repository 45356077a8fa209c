"""Policy findings: what a policy pack asks of a project, a plan or a step, and where it is not met.

Pure rules. The evaluators take an effective policy (the pack shape of the README's "Policy packs":
every section present; a missing one counts as empty) and plain inputs read by the caller, and
return findings: warnings by default. In strict mode a finding whose code the pack lists under
`findings.blocking` blocks planning or execution (`blocking`); the service layer applies that.

A *section* of a markdown file is a heading line, `#` to `######` then its name, compared with the
required name case-insensitively (surrounding spaces and closing `#`s ignored). Headings inside
fenced code blocks do not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "error"]
FindingScope = Literal["onboarding", "planning", "execution", "qa"]
SCOPES: tuple[FindingScope, ...] = ("onboarding", "planning", "execution", "qa")


class Finding(BaseModel):
    """One thing a policy asks for that is missing, with what to do about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(max_length=100)
    severity: Severity
    message: str = Field(max_length=2000)
    scope: FindingScope
    suggested_fix: str = Field(max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A catalogue code: its default severity and scope, what it means, and how to fix it (a
    template over the finding's metadata)."""

    severity: Severity
    scope: FindingScope
    meaning: str
    fix: str


CATALOGUE: dict[str, Entry] = {
    "onboarding.missing_answer": Entry(
        "warning",
        "onboarding",
        "A question the pack marks required has no answer for the project.",
        "Answer {question!r} (key `{key}`) in the project's onboarding clarifications.",
    ),
    "onboarding.no_test_command": Entry(
        "warning",
        "onboarding",
        "No test command is known: the pack requires no checks and nobody said how tests run.",
        "Answer `test_command`, or list the test command in the pack's `checks.required`.",
    ),
    "plan.missing_section": Entry(
        "warning",
        "planning",
        "plan.md has no heading for a section the pack requires.",
        "Add a `## {section}` section to plan.md.",
    ),
    "plan.too_many_steps": Entry(
        "warning",
        "planning",
        "The plan has more steps than the pack's `plan.max_steps`.",
        "Merge steps so the plan has at most {max_steps}, or raise `plan.max_steps` for the project.",
    ),
    "step.missing_section": Entry(
        "warning",
        "planning",
        "A step file has no heading for a section the pack requires of steps.",
        "Add a `## {section}` section to {step_file}.",
    ),
    "step.required_check_not_seen": Entry(
        "warning",
        "qa",
        "The step's agent never ran a required check that then passed (exit code 0).",
        "Run `{check}` in the step (retry it with a note asking for it) and make it pass.",
    ),
    "step.forbidden_path_touched": Entry(
        "error",
        "execution",
        "The step changed a file under a path the pack forbids agents to touch.",
        "Revert the change to {path} (matched `{pattern}`) and retry the step.",
    ),
    "step.artifact_missing": Entry(
        "warning",
        "execution",
        "A file the step's `Artifacts` section lists does not exist after the step ran.",
        "Produce {artifact}, or remove it from the step's Artifacts section.",
    ),
    "step.description_too_short": Entry(
        "warning",
        "planning",
        "A step file says next to nothing beyond its headings (a guardrail: app/domain/qa_guardrails.py).",
        "Say in {step_file} what to change, where, and how to tell it is done.",
    ),
    "step.description_vague": Entry(
        "warning",
        "planning",
        "A step file names no file, path or command and states no acceptance criterion.",
        "Name in {step_file} the files or commands involved, or add how to tell the step is done.",
    ),
    "qa.pass_contradicted": Entry(
        "warning",
        "qa",
        "QA passed the step, yet its own finding or summary says something failed or is not done.",
        "Read the QA report ({where} says {phrase!r}): retry the step, or approve it if the pass stands.",
    ),
    "qa.summary_names_no_file": Entry(
        "warning",
        "qa",
        "The QA verdict names none of the files the step's commit changed: it may not have read them.",
        "Check the change yourself ({files}), then approve or retry the step, or run its QA again.",
    ),
    "qa.second_opinion_unavailable": Entry(
        "warning",
        "qa",
        "The step is critical, but no second QA engine or model differs from the first: one QA decided.",
        "Set `qa.second_opinion` to another engine, or the same engine with a model other than {first}.",
    ),
    "policy.repo_local_invalid": Entry(
        "warning",
        "planning",
        "The repository's `.tasksgodzilla/policy.yml` was refused; the central policy applies.",
        "Fix or remove the repository's policy file (see the message for what was wrong).",
    ),
    "policy.override_refused": Entry(
        "warning",
        "planning",
        "An override tried to loosen a field the pack locks; the pack's value applies.",
        "Remove the override of a locked field, or ask for a pack that allows it.",
    ),
    "policy.unknown_engine": Entry(
        "warning",
        "planning",
        "The policy names an engine that does not exist; the next layer's engine (and model) applies.",
        "Name one of the engines (codex, claude, command) in the pack or overrides, or remove it.",
    ),
    "policy.pack_invalid": Entry(
        "warning",
        "planning",
        "The project's pack does not pass the pack schema; none of it applies (no requirements).",
        "Publish a corrected version of the pack and select it.",
    ),
}


def finding(code: str, message: str, **metadata: Any) -> Finding:
    """A finding of a catalogue code, its fix filled in from `metadata` (KeyError: not catalogued)."""
    entry = CATALOGUE[code]
    return Finding(
        code=code,
        severity=entry.severity,
        scope=entry.scope,
        message=message[:2000],
        suggested_fix=entry.fix.format(**metadata)[:2000],
        metadata=metadata,
    )


# --- reading the policy ------------------------------------------------------------------------


def _section(policy: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = policy.get(name)
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str) and v.strip()] if isinstance(value, list) else []


def required_checks(policy: Mapping[str, Any]) -> list[str]:
    return _strings(_section(policy, "checks").get("required"))


def blocking_codes(policy: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(_strings(_section(policy, "findings").get("blocking")))


# --- markdown sections ---------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(?P<name>.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def headings(markdown: str) -> list[str]:
    """The names of the file's headings (outside fenced code), as written."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            found.append(match["name"].strip())
    return found


def missing_sections(markdown: str, required: Iterable[str]) -> list[str]:
    """The required section names `markdown` has no heading for, in the order required."""
    present = {name.casefold() for name in headings(markdown)}
    return [name for name in required if name.strip().casefold() not in present]


def section_items(markdown: str, name: str) -> list[str]:
    """The bullet items (backticks stripped) under the heading `name`, up to the next heading."""
    items: list[str] = []
    inside = False
    for line in markdown.splitlines():
        if match := _HEADING.match(line):
            inside = match["name"].strip().casefold() == name.casefold()
        elif inside and (item := re.match(r"^\s*[-*+]\s+(.*\S)", line)):
            items.append(item[1].strip().strip("`").strip())
    return [item for item in items if item]


# --- evaluators ----------------------------------------------------------------------------------


def evaluate_project(
    policy: Mapping[str, Any], answers: Mapping[str, str], facts: Mapping[str, Any]
) -> list[Finding]:
    """Onboarding readiness: the pack's required questions answered, a way to test known.

    `answers` are the operator's onboarding answers; `facts` what the service knows of the project
    otherwise (its settings, what discovery found). A key with a non-blank value in either counts.
    """
    known = {k for k, v in {**facts, **answers}.items() if v is not None and str(v).strip()}
    found = []
    for question in _section(policy, "onboarding").get("questions") or []:
        if not isinstance(question, Mapping) or not question.get("required"):
            continue
        key = str(question.get("key", ""))
        if key and key not in known:
            text = str(question.get("question") or key)
            found.append(
                finding("onboarding.missing_answer", f"no answer to {text!r} ({key})", key=key, question=text)
            )
    if not required_checks(policy) and "test_command" not in known:
        found.append(finding("onboarding.no_test_command", "no test command is known for this project"))
    return found


def evaluate_protocol(
    policy: Mapping[str, Any], plan_md: str, step_files: Mapping[str, str]
) -> list[Finding]:
    """The plan and its step files against the pack's required sections and step cap."""
    found = [
        finding("plan.missing_section", f"plan.md has no {section!r} section", section=section)
        for section in missing_sections(plan_md, _strings(_section(policy, "plan").get("required_sections")))
    ]
    cap = _section(policy, "plan").get("max_steps")
    if isinstance(cap, int) and not isinstance(cap, bool) and len(step_files) > cap:
        found.append(
            finding(
                "plan.too_many_steps",
                f"the plan has {len(step_files)} steps; the pack allows {cap}",
                steps=len(step_files),
                max_steps=cap,
            )
        )
    for name in sorted(step_files):
        found += step_sections(policy, name, step_files[name])
    return found


def step_sections(policy: Mapping[str, Any], step_file: str, text: str) -> list[Finding]:
    """`step.missing_section` findings of one step file."""
    required = _strings(_section(policy, "steps").get("required_sections"))
    return [
        finding(
            "step.missing_section",
            f"{step_file} has no {section!r} section",
            section=section,
            step_file=step_file,
        )
        for section in missing_sections(text, required)
    ]


def evaluate_step(
    policy: Mapping[str, Any],
    step_text: str,
    commands_passed: Sequence[str] | None,
    files_changed: Sequence[str] | None,
    artifacts: Sequence[str] | None,
    *,
    step_file: str = "the step file",
) -> list[Finding]:
    """One step: its sections; then, once it ran, its checks, the paths it touched, its artifacts.

    `commands_passed` are the commands its agent ran that exited 0 (a required check is seen when one
    of them contains it); `files_changed` the paths (relative to the repository) its commit changed;
    `artifacts` the files listed in its `Artifacts` section that exist. None means not known (yet):
    that part is not evaluated.
    """
    found = step_sections(policy, step_file, step_text)
    if commands_passed is not None:
        for check in required_checks(policy):
            if not any(check in command for command in commands_passed):
                found.append(
                    finding(
                        "step.required_check_not_seen",
                        f"required check {check!r} not seen passing",
                        check=check,
                    )
                )
    if files_changed is not None:
        forbidden = _strings(_section(policy, "paths").get("forbidden"))
        for path in files_changed:
            pattern = next((p for p in forbidden if path_matches(path, p)), None)
            if pattern is not None:
                found.append(
                    finding(
                        "step.forbidden_path_touched",
                        f"the step changed {path}, which the policy forbids ({pattern})",
                        path=path,
                        pattern=pattern,
                    )
                )
    if artifacts is not None:
        present = set(artifacts)
        for artifact in section_items(step_text, "Artifacts"):
            if artifact not in present:
                found.append(
                    finding("step.artifact_missing", f"artifact {artifact} is missing", artifact=artifact)
                )
    return found


def path_matches(path: str, pattern: str) -> bool:
    """Glob match of a repository path: `*` and `?` within one segment, `**` across any number of
    them (`a/**` matches everything under `a`, `**/x` an `x` anywhere)."""
    return _glob(pattern.strip("/")).fullmatch(path.strip("/")) is not None


def _glob(pattern: str) -> re.Pattern[str]:
    out = []
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        out.append("".join(_GLOB_CHARS.get(c, re.escape(c)) for c in part))
        if not last:
            out.append("/")
    return re.compile("".join(out), re.DOTALL)


_GLOB_CHARS = {"*": "[^/]*", "?": "[^/]"}


def from_policy_problems(problems: Iterable[tuple[str, str]]) -> list[Finding]:
    """Findings of the policy merge's problems: (code, message), code one of the `policy.*` codes."""
    found = []
    for code, message in problems:
        if not code.startswith("policy.") or code not in CATALOGUE:
            raise ValueError(f"{code!r} is not a policy finding code")
        found.append(finding(code, message))
    return found


def blocking(findings: Iterable[Finding], policy: Mapping[str, Any], strict: bool) -> Finding | None:
    """The first finding that blocks: only in strict mode, only of a code the pack lists as blocking."""
    if not strict:
        return None
    codes = blocking_codes(policy)
    return next((f for f in findings if f.code in codes), None)
