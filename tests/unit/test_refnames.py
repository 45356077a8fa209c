"""Branch names: our pure check against git's own `check-ref-format --branch`, case by case.

Every generated name is given to both; they must agree, except where our stricter rule (printable
ASCII only, at most 200 characters, never `@`) refuses a name git would take.
"""

from __future__ import annotations

import itertools
import random
import subprocess
from pathlib import Path

import pytest

from app.domain.refnames import BRANCH_MAX, branch_name_problem, check_branch_name
from app.errors import InvalidInputError

HOSTILE = [
    "main\u202egnp",
    "main:refs/heads/evil",
    "main^",
    "main.lock",
    "ma\\in",
    "-x",
    "--force",
    "a..b",
    "a/.b",
    ".a",
    "a/",
    "/a",
    "a//b",
    "a.",
    "@",
    "HEAD",
    "a@{1}",
    "@{-1}",
    "a b",
    "a\tb",
    "a~1",
    "a?",
    "a*",
    "a[b",
    "a\x7fb",
    "a\x00b",
    "a.lock/b",
    "",
    "x" * (BRANCH_MAX + 1),
    "café",
    "main\u200b",
    "main\ufeff",
    "m\u0430in",  # Cyrillic а: a lookalike of main
]
VALID = [
    "main",
    "feature/login",
    "a./b",
    "a@b",
    "a{b",
    "a}b",
    "refs/heads/x",
    "a/b.lock.x",
    "release-1.2",
    "tasksgodzilla/demo/0001-add-login",
    "x" * BRANCH_MAX,
    "a/@",
    "#1",
]

# Characters that matter to git's rules, and a few that matter only to ours.
ALPHABET = ["a", "b", ".", "/", "@", "{", "}", "-", "l", "o", "c", "k", "~", "^", ":", "?", "*", "[",
            "\\", " ", "\t", "\x7f", "\x01", "é", "\u202e", "_", "#", "!"]  # fmt: skip


def _generated(count: int) -> list[str]:
    chooser = random.Random(13)
    names = {"".join(p) for n in (1, 2) for p in itertools.product(ALPHABET, repeat=n)}
    names |= {"main" + s for s in (".lock", ".", "/", "/.x", "..x", "@{", ".lock/x", "/x.lock")}
    while len(names) < count:
        names.add(
            "".join(
                chooser.choice([*ALPHABET, "main", "lock", ".lock"]) for _ in range(chooser.randint(1, 7))
            )
        )
    return sorted(names)


def _git_accepts(name: str, cwd: Path) -> bool:
    # Outside a repository git does not interpret `@{-1}` or `@`: it checks the name as given.
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", name], cwd=cwd, capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and done.stdout.rstrip("\n") == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    assert branch_name_problem(name) is not None
    with pytest.raises(InvalidInputError) as refused:
        check_branch_name(name, field="base_branch")
    assert refused.value.details == {"field": "base_branch"}


@pytest.mark.parametrize("name", VALID)
def test_valid_names_pass(name: str) -> None:
    assert branch_name_problem(name) is None
    assert check_branch_name(name) == name


def test_our_verdict_matches_git_on_generated_names(tmp_path: Path) -> None:
    names = [n for n in _generated(900) + HOSTILE + VALID if "\x00" not in n]  # argv cannot carry NUL
    disagreements = []
    for name in names:
        ours = branch_name_problem(name) is None
        git = _git_accepts(name, tmp_path)
        if ours == git:
            continue
        stricter = not ours and git and (not name.isascii() or name == "@" or len(name) > BRANCH_MAX)
        if not stricter:
            disagreements.append((name, {"ours": ours, "git": git}))
    assert disagreements == []
    # The table is worth something only if both verdicts occur often.
    accepted = sum(branch_name_problem(n) is None for n in names)
    assert 100 < accepted < len(names) - 100


def test_the_refusal_says_why() -> None:
    assert "'..'" in (branch_name_problem("a..b") or "")
    assert "U+202E" in (branch_name_problem("main\u202egnp") or "")
    assert ".lock" in (branch_name_problem("main.lock") or "")
