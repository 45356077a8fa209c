"""The git work of a step at its floor (issue 18): one status says where HEAD is and whether anything
is left uncommitted; the commit says its own sha and stats; a bundle of a fresh HEAD is one command;
whether there is a remote is read from the checked config. Each still says what the longer way said."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from app.git import GitRepository
from app.git.parsing import bundle_refs, committed_sha, parse_status_v2
from app.git.runner import GitResult, GitRunner
from tests.git.gitutil import Origin, git


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Every git command app/git runs from here on, by subcommand."""
    seen: collections.Counter[str] = collections.Counter()
    original = GitRunner.run

    async def run(self: GitRunner, args: Any, **kwargs: Any) -> GitResult:
        seen[str(args[0])] += 1
        return await original(self, args, **kwargs)

    monkeypatch.setattr(GitRunner, "run", run)
    return seen


async def test_state_says_where_head_is_and_what_is_left(worktree: GitRepository, origin: Origin):
    assert await worktree.state() == parse_status_v2(f"# branch.oid {origin.main_sha}\0".encode())
    assert (await worktree.state()).clean
    (worktree.path / "app.py").write_text("changed\n")
    assert not (await worktree.state()).clean
    git("checkout", "--", "app.py", cwd=worktree.path)
    (worktree.path / "deep" / "er").mkdir(parents=True)
    (worktree.path / "deep" / "er" / "new.txt").write_text("new\n")
    state = await worktree.state()
    assert (state.head, state.clean) == (origin.main_sha, False)


async def test_a_merge_left_in_progress_counts_as_uncommitted(worktree: GitRepository, origin: Origin):
    git_dir = Path(git("rev-parse", "--git-dir", cwd=worktree.path))
    git_dir = git_dir if git_dir.is_absolute() else worktree.path / git_dir
    (git_dir / "MERGE_HEAD").write_text(origin.main_sha + "\n")
    assert not (await worktree.state()).clean
    await worktree.discard_changes()
    assert (await worktree.state()).clean


async def test_a_commit_says_its_sha_and_stats_without_asking_again(
    worktree: GitRepository, commands: collections.Counter[str]
):
    (worktree.path / "app.py").write_text("print('a')\nprint('b')\n")
    (worktree.path / "weird] name [x 0123456789012345678901234567890123456789] .txt").write_text("x\n")
    git("mv", "README.md", "READ.md", cwd=worktree.path)
    message = "feat: x [0000000000000000000000000000000000000000] y [protocol-0007/01]"

    sha, stats = await worktree.commit_all_with_stats(message)

    assert sha == git("rev-parse", "HEAD", cwd=worktree.path)
    assert stats == await worktree.diff_stats(f"{sha}^", sha)
    assert {f.old_path for f in stats.files} >= {"README.md"}
    assert "rev-parse" not in commands
    assert await worktree.commit_all_with_stats("chore: nothing") == (None, type(stats)())


async def test_a_bundle_of_a_fresh_head_is_one_command_and_carries_it(
    worktree: GitRepository, origin: Origin, tmp_path: Path, commands: collections.Counter[str]
):
    (worktree.path / "app.py").write_text("one\n")
    first = await worktree.commit_all("feat: one")
    (worktree.path / "app.py").write_text("two\n")
    second = await worktree.commit_all("feat: two")
    assert first is not None
    assert second is not None
    commands.clear()

    data = await worktree.bundle(second, origin.main_sha)

    assert dict(commands) == {"bundle": 1}
    assert bundle_refs(data) == {"HEAD": second}
    older = await worktree.bundle(first, origin.main_sha)  # not HEAD: a ref of its own, for the moment
    assert set(bundle_refs(older).values()) == {first}
    assert not git("for-each-ref", "refs/tasksgodzilla", cwd=worktree.path)
    elsewhere = tmp_path / "elsewhere"
    git("clone", "--quiet", str(origin.path), str(elsewhere))
    target = worktree.sibling(elsewhere)
    await target.unbundle(data)
    assert await target.has_commit(second)


async def test_whether_there_is_a_remote_runs_no_git(
    clone: GitRepository, commands: collections.Counter[str]
):
    assert await clone.has_remote("origin")
    assert not await clone.has_remote("upstream")
    assert not commands


def test_the_commit_summary_is_read_only_from_its_start():
    sha = "8d42342896d9d959153225e5a7cee1e727982029"
    assert committed_sha(f"[main (root-commit) {sha}] init\n 1 file changed".encode()) == sha
    assert committed_sha(f"[a]b {sha}] s\n".encode()) == sha
    assert committed_sha(f"[detached HEAD {sha}] s\n".encode()) == sha
    assert committed_sha(f"[x 1234567] s [y {sha}] ".encode()) is None
    assert committed_sha(b"") is None


def test_bundle_headers_name_their_refs():
    sha, since = "a" * 40, "b" * 40
    data = f"# v2 git bundle\n-{since} base\n{sha} HEAD\n\nPACK...".encode()
    assert bundle_refs(data) == {"HEAD": sha}
    v3 = f"# v3 git bundle\n@object-format=sha1\n-{since}\n{sha} refs/heads/x\n\nPACK".encode()
    assert bundle_refs(v3) == {"refs/heads/x": sha}
    assert bundle_refs(b"PACK") == {}
