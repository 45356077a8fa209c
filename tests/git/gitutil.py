"""Plain git for test set-up and checks (synchronous, isolated from the developer's configuration).

It never goes through the code under test, so a test can trust what it reports.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

AUTHOR = ("Test Bot", "bot@example.test")


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Plain git for set-up and checks; raises on failure."""
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LC_ALL": "C",
        **(env or {}),
    }
    done = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


def commit_count(repo: Path, ref: str = "HEAD") -> int:
    return int(git("rev-list", "--count", ref, cwd=repo))


@dataclass
class Origin:
    """A bare repository standing in for the project's remote, and the sha of its `main`."""

    path: Path
    main_sha: str

    def rev_parse(self, ref: str) -> str:
        return git(f"--git-dir={self.path}", "rev-parse", "--verify", ref)

    def branches(self) -> list[str]:
        out = git(f"--git-dir={self.path}", "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return sorted(out.splitlines())
