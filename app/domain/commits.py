"""Commit messages of protocol steps: `type(scope): subject [protocol-NNNN/XX]`.

The trailing tag is how a step's commit is found again (by the services, by CI webhooks): NNNN is the
protocol number, XX the step index, and the planning commit uses step 00.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from app.errors import InvalidInputError

COMMIT_TYPES = frozenset(
    {"feat", "fix", "chore", "docs", "test", "refactor", "perf", "build", "ci", "style", "revert"}
)
PLANNING_STEP_INDEX = 0
SUBJECT_MAX = 100
# Numbers print with at least four digits (`0007`); past 9,999 they grow (`10000`), so existing names
# and tags stay as they are. Eight digits is more runs than a project will ever have.
MAX_PROTOCOL_NUMBER = 99_999_999
MAX_STEP_INDEX = 99

_SCOPE = re.compile(r"[a-z0-9][a-z0-9._/-]{0,39}")
# Anchored at the end of the first line: a tag-like text inside the subject cannot pose as the tag.
_TAG_AT_END = re.compile(r"\[protocol-(\d{4}|[1-9]\d{4,7})/(\d{2})\]\s*$")


class StepTag(NamedTuple):
    """What a commit tag names: the protocol number and the step index (0 = planning)."""

    number: int
    step_index: int


def step_tag(number: int, step_index: int) -> str:
    """`[protocol-0007/03]`: the tag that ends every commit message of a protocol step."""
    if not 0 < number <= MAX_PROTOCOL_NUMBER:
        raise InvalidInputError(
            f"protocol number {number} is outside 1..{MAX_PROTOCOL_NUMBER}", field="number"
        )
    if not 0 <= step_index <= MAX_STEP_INDEX:
        raise InvalidInputError(f"step index {step_index} is outside 0..99", field="step_index")
    return f"[protocol-{number:04d}/{step_index:02d}]"


def clean_subject(subject: str, max_length: int = SUBJECT_MAX) -> str:
    """One printable line: control characters and newlines become spaces, runs of spaces one space."""
    printable = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in subject)
    line = " ".join(printable.split())
    if len(line) > max_length:
        line = line[: max_length - 1].rstrip() + "…"
    return line


def format_step_commit(
    commit_type: str, subject: str, *, number: int, step_index: int, scope: str | None = None
) -> str:
    """`feat(api): add login [protocol-0007/03]`; the subject is cleaned and capped, not rejected."""
    if commit_type not in COMMIT_TYPES:
        allowed = ", ".join(sorted(COMMIT_TYPES))
        raise InvalidInputError(f"commit type {commit_type!r} is not one of {allowed}", field="type")
    if scope is not None and not _SCOPE.fullmatch(scope):
        raise InvalidInputError(
            "commit scope must be 1-40 of a-z, 0-9, '.', '_', '/', '-', starting with a letter or digit",
            field="scope",
        )
    line = clean_subject(subject)
    if not line:
        raise InvalidInputError("commit subject is empty", field="subject")
    prefix = f"{commit_type}({scope})" if scope else commit_type
    return f"{prefix}: {line} {step_tag(number, step_index)}"


def planning_commit(subject: str, *, number: int) -> str:
    """The commit message of a protocol's plan (step 00)."""
    return format_step_commit("docs", subject, number=number, step_index=PLANNING_STEP_INDEX, scope="plan")


def parse_step_tag(message: str) -> StepTag | None:
    """The tag ending the first line of `message`, or None when there is none (or it is out of range)."""
    first_line = message.split("\n", 1)[0]
    match = _TAG_AT_END.search(first_line)
    if match is None:
        return None
    number, step_index = int(match.group(1)), int(match.group(2))
    if number == 0:
        return None
    return StepTag(number, step_index)


_TRAILER_VALUE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def with_correlation(message: str, correlation_id: str | None) -> str:
    """`message` with a `Correlation-Id:` trailer naming the run's correlation id (left out when there
    is none, or it holds anything but letters, digits and `._:-`)."""
    if correlation_id is None or not _TRAILER_VALUE.fullmatch(correlation_id):
        return message
    return f"{message}\n\nCorrelation-Id: {correlation_id}"
