"""Guardrails beyond the schemas: sanity checks on a QA verdict and on a step's description, each
returned as a finding of the catalogue (app/domain/findings.py), a warning unless strict mode blocks it.

A QA verdict:
  - `qa.pass_contradicted`: a pass whose own words say otherwise: one of its findings says something
    fails or failed, is not implemented, did not pass, is not met or does not work (not right after
    "no", "nothing", "never" or "none"); or its summary says one of those but "fails"/"failed".
    (An error-severity finding already turns a pass into a fail: app.domain.qa.read_verdict.)
  - `qa.summary_names_no_file`: the step's commit changed files and neither the summary nor any
    finding (its text or its `file`) names one of them, by path or by file name.
A step file (as planning wrote it):
  - `step.description_too_short`: fewer than three words outside its headings;
  - `step.description_vague`: it names no file, path or command (a `code span`, a fenced block, a
    path with `/`, a name with an extension) and states no acceptance criterion (a line or heading
    saying acceptance, done when, criteria, verify, expect, must, should, or test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from app.domain.findings import Finding, finding, headings
from app.domain.qa import QaVerdict, Severity

_STRONG = (
    r"not (?:yet )?implemented|did not pass|does not pass|didn't pass|doesn't pass"
    r"|(?:is|are|was|were) not met|unmet|does not work|doesn't work"
)
_IN_FINDING = re.compile(rf"\b(?:{_STRONG}|fails|failed)\b", re.IGNORECASE)
_IN_SUMMARY = re.compile(rf"\b(?:{_STRONG})\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:no|nothing|never|none|zero)\W+(?:\w+\W+){0,2}$", re.IGNORECASE)
MIN_WORDS = 3
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]")
_NAMES_SOMETHING = re.compile(
    r"`[^`\n]+`"  # a code span: a file, a command, a symbol
    r"|^ {0,3}(?:```|~~~|\$ )"  # a fenced block or a shell line
    r"|[\w.-]+/[\w./-]*\w"  # a path
    r"|\b[\w-]+\.(?:[a-z][a-z0-9]{0,7})\b",  # a file name with an extension
    re.MULTILINE,
)
_CRITERION = re.compile(
    r"\b(?:acceptance|accepted when|done when|criteria|criterion|verif\w*|expect\w*|must|should|tests?)\b",
    re.IGNORECASE,
)


def check_verdict(verdict: QaVerdict, files_changed: Sequence[str]) -> list[Finding]:
    """The guardrail findings of one QA verdict on a commit that changed `files_changed`."""
    found = []
    if verdict.passed and (said := _contradiction(verdict)) is not None:
        phrase, where = said
        found.append(
            finding(
                "qa.pass_contradicted",
                f"QA passed the step, yet its {where} says {phrase!r}",
                phrase=phrase,
                where=where,
            )
        )
    if files_changed and not _names_a_file(verdict, files_changed):
        shown = ", ".join(files_changed[:5]) + (" …" if len(files_changed) > 5 else "")
        found.append(
            finding(
                "qa.summary_names_no_file",
                f"QA {verdict.verdict}: its summary and findings name none of the {len(files_changed)} "
                f"files the commit changed ({shown})",
                files=shown,
            )
        )
    return found


def _contradiction(verdict: QaVerdict) -> tuple[str, str] | None:
    for item in verdict.findings:
        if item.severity is not Severity.ERROR and (phrase := _said(_IN_FINDING, item.message)):
            return phrase, "finding"
    if phrase := _said(_IN_SUMMARY, verdict.summary):
        return phrase, "summary"
    return None


def _said(pattern: re.Pattern[str], text: str) -> str | None:
    for match in pattern.finditer(text):
        if not _NEGATED.search(text[: match.start()]):
            return match.group(0)
    return None


def _names_a_file(verdict: QaVerdict, files: Sequence[str]) -> bool:
    texts = [
        verdict.summary,
        *(f.message for f in verdict.findings),
        *(f.file or "" for f in verdict.findings),
    ]
    text = "\n".join(texts).casefold()
    for path in files:
        name = PurePosixPath(path).name.casefold()
        if path.casefold() in text:
            return True
        if name and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text):
            return True
    return False


def check_step_description(step_file: str, text: str) -> list[Finding]:
    """The guardrail findings of one step file's description."""
    body = "\n".join(line for line in text.splitlines() if line.strip() and not _HEADING.match(line))
    words = re.findall(r"\w+", body)
    if len(words) < MIN_WORDS:
        return [
            finding(
                "step.description_too_short",
                f"{step_file} says {len(words)} word(s) beyond its headings",
                step_file=step_file,
            )
        ]
    criterion = _CRITERION.search(body) or any(_CRITERION.search(h) for h in headings(text))
    if not _NAMES_SOMETHING.search(body) and not criterion:
        return [
            finding(
                "step.description_vague",
                f"{step_file} names no file, path or command and states no acceptance criterion",
                step_file=step_file,
            )
        ]
    return []


def check_step_descriptions(step_files: Mapping[str, str]) -> list[Finding]:
    """check_step_description over a plan's step files, in file order."""
    return [f for name in sorted(step_files) for f in check_step_description(name, step_files[name])]
