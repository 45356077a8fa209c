"""Where a project's clone and its protocols' worktrees live, and what a protocol's branch is called.

    <projects_root>/<project_name>/repo                        the project's clone
    <projects_root>/<project_name>/worktrees/<protocol_name>   one worktree per protocol

Pure path arithmetic: nothing here touches the disk. Names are validated so that a joined path can
never leave `projects_root`.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.domain.commits import MAX_PROTOCOL_NUMBER
from app.domain.refnames import check_branch_name
from app.errors import InvalidInputError

REPO_DIR = "repo"
WORKTREES_DIR = "worktrees"

_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# What app.domain.naming.protocol_name produces: NNNN-slug.
_PROTOCOL_NAME = re.compile(r"(?:\d{4}|[1-9]\d{4,7})-[a-z0-9][a-z0-9-]{0,59}")


def check_project_name(name: str, *, field: str = "project_name") -> str:
    """`name` if it is a safe folder name (a-z, 0-9, `.`, `_`, `-`; no `..`), else InvalidInputError."""
    if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            "project name must be 1-63 of a-z, 0-9, '.', '_', '-', start with a letter or digit "
            "and not contain '..'",
            field=field,
        )
    return name


def check_protocol_name(name: str) -> str:
    """`name` if it has the `NNNN-slug` form of a protocol name, else InvalidInputError."""
    if not isinstance(name, str) or not _PROTOCOL_NAME.fullmatch(name):
        raise InvalidInputError("protocol name must look like 0007-some-slug", field="protocol_name")
    return name


def project_dir(projects_root: Path, project_name: str) -> Path:
    """The folder holding everything of one project."""
    return projects_root / check_project_name(project_name)


def project_repo_path(projects_root: Path, project_name: str) -> Path:
    """Where the project's clone lives."""
    return project_dir(projects_root, project_name) / REPO_DIR


def protocol_worktree_path(projects_root: Path, project_name: str, protocol_name: str) -> Path:
    """Where the worktree of one protocol lives."""
    return project_dir(projects_root, project_name) / WORKTREES_DIR / check_protocol_name(protocol_name)


def protocol_branch_name(pattern: str, *, number: int, slug: str, project: str) -> str:
    """The branch of a protocol from `Settings.branch_pattern`: `{name}` is NNNN-slug, `{number}` an int
    (so `{number:04d}` works, as the setting's validator allows), `{slug}` the slug, `{project}` the
    project's name (protocol numbers are per project: two projects on one remote need it).

    A result that is no valid branch name (`app.domain.refnames`) is an InvalidInputError naming
    `branch_pattern`.
    """
    if not 0 < number <= MAX_PROTOCOL_NUMBER:
        raise InvalidInputError(
            f"protocol number {number} is outside 1..{MAX_PROTOCOL_NUMBER}", field="number"
        )
    name = f"{number:04d}-{slug}"
    try:
        branch = pattern.format(name=name, number=number, slug=slug, project=project)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidInputError(f"branch pattern is malformed ({exc})", field="branch_pattern") from None
    return check_branch_name(branch, field="branch_pattern")
