"""Branch names: git's `check-ref-format --branch` rules, in Python, plus our own stricter ones.

One check for every branch name that enters (API, console, CLI, settings) or that the service
derives (a protocol branch from `TASKSGODZILLA_BRANCH_PATTERN`); no git process is started for it.

git's rules (git-check-ref-format(1), checked on `refs/heads/<name>`): no component starts with `.`
or ends with `.lock`; no `..`; no ASCII control character, space, `~ ^ : ? * [ \\`; does not end with
`/` or `.`; no empty component (`//`, leading `/`); no `@{`; not `HEAD`; no leading `-`.
Ours on top: printable ASCII only (so no bidirectional override, zero-width or lookalike letter
can disguise a name in a log, a page or a terminal), at most 200 characters, and never a lone `@`
(git reads it as HEAD inside a repository).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from app.errors import InvalidInputError

BRANCH_MAX = 200
_GIT_FORBIDDEN = frozenset(" ~^:?*[\\")


def branch_name_problem(name: object) -> str | None:
    """Why `name` cannot be one of our branch names, or None when it can."""
    if not isinstance(name, str) or not name:
        return "a branch name is required"
    if len(name) > BRANCH_MAX:
        return f"branch name is longer than {BRANCH_MAX} characters"
    for char in name:
        if not (0x20 <= ord(char) < 0x7F):
            return f"branch name must be printable ASCII, not U+{ord(char):04X}"
    if name.startswith("-"):
        return "branch name must not start with '-'"
    if name in ("HEAD", "@"):
        return f"{name!r} is not a branch name"
    if bad := sorted(_GIT_FORBIDDEN.intersection(name)):
        shown = " ".join("space" if c == " " else c for c in bad)
        return f"branch name must not contain {shown}"
    if ".." in name or "@{" in name:
        return "branch name must not contain '..' or '@{'"
    if name.endswith(("/", ".")):
        return "branch name must not end with '/' or '.'"
    for component in name.split("/"):
        if not component:
            return "branch name must not start with '/' or contain '//'"
        if component.startswith("."):
            return "no part of a branch name may start with '.'"
        if component.endswith(".lock"):
            return "no part of a branch name may end with '.lock'"
    return None


def check_branch_name(name: str, *, field: str = "branch") -> str:
    """`name` if it passes `branch_name_problem`, else InvalidInputError naming `field`."""
    if (problem := branch_name_problem(name)) is not None:
        raise InvalidInputError(f"{field}: {problem}", field=field)
    return name


def _valid_branch(name: str) -> str:
    if (problem := branch_name_problem(name)) is not None:
        raise ValueError(problem)  # pydantic names the field in its error
    return name


# The type of every branch name in a request model: refused with a 422 naming the field.
BranchName = Annotated[str, AfterValidator(_valid_branch)]


def check_branch_pattern(pattern: str) -> str:
    """`pattern` if it makes a valid, distinct branch name per protocol (`TASKSGODZILLA_BRANCH_PATTERN`:
    `{name}`, `{number}`, `{slug}`, `{project}`), else ValueError saying why."""
    try:
        example = pattern.format(name="0001-x", number=1, slug="x", project="p")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"only {{name}}, {{number}}, {{slug}} and {{project}} may appear ({exc})") from None
    if example == pattern.format(name="0002-y", number=2, slug="y", project="p"):
        raise ValueError("must contain {name}, or {number} and {slug}")
    if (problem := branch_name_problem(example)) is not None:
        raise ValueError(f"gives no valid branch name ({example!r}: {problem})")
    return pattern
