"""Real git in temporary folders: a bare `origin` with one commit on `main`, a clone, a worktree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.git import GitRepository
from app.git.remote_guard import RemoteGuard
from tests.git.gitutil import AUTHOR, Origin, git


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """What the service would pass as base_env: PATH, and a HOME with no git configuration in it."""
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": os.environ["PATH"], "HOME": str(home)}


@pytest.fixture(scope="session")
def origin_template(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """Built once: a bare repository whose `main` has one commit (README.md, app.py)."""
    base = tmp_path_factory.mktemp("origin-template")
    bare = base / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = base / "seed"
    git("clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text("hello\n")
    (seed / "app.py").write_text("print('hi')\n")
    git("add", "-A", cwd=seed)
    git("-c", "user.name=Seed", "-c", "user.email=seed@example.test", "commit", "-qm", "init", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=seed)
    return Origin(bare, git("rev-parse", "HEAD", cwd=seed))


@pytest.fixture
def origin(origin_template: Origin, tmp_path: Path) -> Origin:
    """This test's own copy of the template origin (a file copy is cheaper than building it again)."""
    bare = tmp_path / "origin.git"
    shutil.copytree(origin_template.path, bare)
    return Origin(bare, origin_template.main_sha)


@pytest.fixture
async def clone(origin: Origin, tmp_path: Path, base_env: dict[str, str]) -> GitRepository:
    """The project clone, made by the code under test (local and loopback remotes allowed, as in
    tests only: some serve git, or hang, on 127.0.0.1)."""
    return await GitRepository.clone(
        str(origin.path),
        tmp_path / "projects" / "demo" / "repo",
        timeout=20,
        author_name=AUTHOR[0],
        author_email=AUTHOR[1],
        allow_local_remotes=True,
        base_env=base_env,
        remote_guard=RemoteGuard(allow_local=True, allow_private=True),
    )


@pytest.fixture
async def worktree(clone: GitRepository, tmp_path: Path) -> GitRepository:
    """A protocol worktree on a new branch `0007-demo` from main."""
    return await clone.worktree_add(
        tmp_path / "projects" / "demo" / "worktrees" / "0007-demo", "0007-demo", "main"
    )
