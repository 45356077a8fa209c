"""A repository's policy file read from a commit through git: bounded, never followed, never big."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.domain.policy import REPO_LOCAL_INVALID
from app.git import GitRepository
from app.services.policy import read_repo_policy
from tests.git.gitutil import git

POLICY = ".tasksgodzilla/policy.yml"


def _commit(repo: Path, files: dict[str, bytes | None], *, link: tuple[str, str] | None = None) -> str:
    for name, data in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            path.mkdir()
            (path / "inner").write_text("x\n")
        else:
            path.write_bytes(data)
    if link is not None:
        (repo / link[0]).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link[1], repo / link[0])
    git("add", "-A", cwd=repo)
    git("-c", "user.name=T", "-c", "user.email=t@example.test", "commit", "-qm", "policy", cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


async def test_no_file_adds_nothing(clone: GitRepository) -> None:
    assert await read_repo_policy(clone, await clone.head_sha()) == (None, [])


async def test_the_file_is_read_at_the_commit_given_not_at_head(clone: GitRepository) -> None:
    first = _commit(clone.path, {POLICY: b"plan: {max_steps: 4}\n"})
    _commit(clone.path, {POLICY: b"plan: {max_steps: 40}\n"})
    assert await read_repo_policy(clone, first) == ({"plan": {"max_steps": 4}}, [])


async def test_a_symlink_to_etc_passwd_is_refused_unread(clone: GitRepository) -> None:
    sha = _commit(clone.path, {}, link=(POLICY, "/etc/passwd"))
    layer, problems = await read_repo_policy(clone, sha)
    assert layer is None
    assert [p.code for p in problems] == [REPO_LOCAL_INVALID]
    assert "symbolic link" in problems[0].message
    assert "root:" not in problems[0].message


async def test_a_50_mb_file_is_refused_without_loading_it(clone: GitRepository) -> None:
    sha = _commit(clone.path, {POLICY: b"# padding\n" * (5 * 1024 * 1024)})
    started = time.monotonic()
    layer, problems = await read_repo_policy(clone, sha)
    assert time.monotonic() - started < 10
    assert layer is None
    assert "larger than" in problems[0].message


async def test_a_folder_in_place_of_the_file_is_refused(clone: GitRepository) -> None:
    sha = _commit(clone.path, {POLICY: None})
    layer, problems = await read_repo_policy(clone, sha)
    assert layer is None
    assert "not a regular file" in problems[0].message


async def test_json_is_read_when_there_is_no_yaml(clone: GitRepository) -> None:
    sha = _commit(clone.path, {".tasksgodzilla/policy.json": b'{"checks": {"required": ["make test"]}}'})
    assert await read_repo_policy(clone, sha) == ({"checks": {"required": ["make test"]}}, [])
