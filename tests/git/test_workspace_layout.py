"""Where clones and worktrees live, and protocol branch names (pure: app.domain.workspace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain.workspace import (
    check_project_name,
    project_repo_path,
    protocol_branch_name,
    protocol_worktree_path,
)
from app.errors import InvalidInputError
from app.git import check_branch_name

ROOT = Path("/srv/tg/projects")


def test_layout():
    assert project_repo_path(ROOT, "demo") == ROOT / "demo" / "repo"
    assert (
        protocol_worktree_path(ROOT, "demo", "0007-add-login")
        == ROOT / "demo" / "worktrees" / "0007-add-login"
    )


@pytest.mark.parametrize("name", ["demo", "a", "my-app.v2", "x_y", "0day", "a" * 63])
def test_good_project_names(name):
    assert check_project_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "..", "a..b", ".hidden", "-dash", "_under", "Upper", "a/b", "a\\b", "a b", "a\nb", "a" * 64, "ü"],
)
def test_bad_project_names(name):
    with pytest.raises(InvalidInputError) as caught:
        project_repo_path(ROOT, name)
    assert caught.value.details == {"field": "project_name"}


@pytest.mark.parametrize("name", ["../0007-x", "0007-x/..", "7-x", "0007-", "0007-X", "0007-a b", ""])
def test_bad_protocol_names(name):
    with pytest.raises(InvalidInputError):
        protocol_worktree_path(ROOT, "demo", name)


@pytest.mark.parametrize(
    ("pattern", "branch"),
    [
        ("{name}", "0007-add-login"),
        ("tasksgodzilla/{project}/{name}", "tasksgodzilla/demo/0007-add-login"),
        ("tg/{name}", "tg/0007-add-login"),
        ("agent/{number}-{slug}", "agent/7-add-login"),
        ("p{number:04d}/{slug}", "p0007/add-login"),
    ],
)
def test_protocol_branch_name(pattern, branch):
    assert protocol_branch_name(pattern, number=7, slug="add-login", project="demo") == branch
    assert check_branch_name(branch) == branch


@pytest.mark.parametrize("pattern", ["{nope}", "{0}", "{name"])
def test_malformed_branch_pattern(pattern):
    with pytest.raises(InvalidInputError) as caught:
        protocol_branch_name(pattern, number=7, slug="x", project="demo")
    assert caught.value.details == {"field": "branch_pattern"}
