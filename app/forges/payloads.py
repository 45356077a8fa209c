"""Reading forge payloads defensively: a field of the wrong type or shape is absent, never a crash."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.domain.ci import SHA

# Branch names and repository paths as forges allow them, minus anything a log or a git argument
# could misread (control characters, spaces, a leading dash).
_BRANCH = re.compile(r"[^\s\x00-\x1f\x7f~^:?*\[\\-][^\s\x00-\x1f\x7f~^:?*\[\\]{0,254}")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){1,20}")


def field(payload: Any, *path: str) -> Any:
    """`payload[path[0]][path[1]]...`, or None where a level is missing or not an object."""
    value = payload
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def text(payload: Any, *path: str) -> str | None:
    value = field(payload, *path)
    return value if isinstance(value, str) else None


def number(payload: Any, *path: str) -> int | None:
    value = field(payload, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31 else None


def items(payload: Any, *path: str) -> list[Any]:
    value = field(payload, *path)
    return value if isinstance(value, list) else []


def sha(value: str | None) -> str | None:
    """A full commit id (SHA-1 or SHA-256), lower-cased; None for anything else."""
    if value is None:
        return None
    lowered = value.lower()
    return lowered if SHA.fullmatch(lowered) else None


def branch(value: str | None) -> str | None:
    """A branch name (`refs/heads/` removed) that is safe to look up; None for anything else."""
    if value is None:
        return None
    name = value.removeprefix("refs/heads/")
    return name if _BRANCH.fullmatch(name) and ".." not in name else None


def repository(value: str | None) -> str | None:
    """`owner/name` or `group/subgroup/name`; None for anything else."""
    return value if value is not None and _REPOSITORY.fullmatch(value) and ".." not in value else None


def link(value: str | None) -> str | None:
    """An http(s) URL to show as a link (never `javascript:` and the like); None for anything else."""
    if value is None or len(value) > 2000 or not value.startswith(("https://", "http://")):
        return None
    return value if value.isprintable() and " " not in value else None
