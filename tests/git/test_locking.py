"""Operations on one repository are serialised inside a process; worktrees share their clone's lock."""

from __future__ import annotations

import asyncio

from app.git import GitRepository
from app.git.locks import repository_lock
from tests.git.gitutil import commit_count, git


async def test_concurrent_commits_on_one_worktree_all_succeed(worktree: GitRepository):
    before = commit_count(worktree.path)

    async def change_and_commit(i: int) -> str | None:
        (worktree.path / f"file-{i}.txt").write_text(f"{i}\n")
        return await worktree.commit_all(f"feat: file {i} [protocol-0007/01]")

    async def look() -> None:
        await worktree.changed_files()
        await worktree.head_sha()

    results = await asyncio.gather(*(change_and_commit(i) for i in range(8)), *(look() for _ in range(4)))

    shas = [sha for sha in results[:8] if sha is not None]
    assert shas, "at least the first commit found something to commit"
    assert commit_count(worktree.path) == before + len(shas)
    assert len(set(shas)) == len(shas)
    assert git("status", "--porcelain", cwd=worktree.path) == ""
    tracked = git("ls-files", cwd=worktree.path).splitlines()
    assert {f"file-{i}.txt" for i in range(8)} <= set(tracked)


async def test_a_worktree_waits_for_the_lock_of_its_clone(clone: GitRepository, worktree: GitRepository):
    async with repository_lock(clone.path / ".git"):
        waiting = asyncio.create_task(worktree.head_sha())
        await asyncio.sleep(0.3)
        assert not waiting.done()
    assert len(await waiting) == 40


async def test_different_repositories_do_not_wait_for_each_other(clone: GitRepository, tmp_path):
    other = tmp_path / "other"
    git("init", "--quiet", str(other))
    async with repository_lock(other / ".git"):
        assert len(await asyncio.wait_for(clone.head_sha(), 5)) == 40
