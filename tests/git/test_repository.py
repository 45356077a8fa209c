"""The repository operations against real git: clone, worktree, commit, find, push, remote branches, diff."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.domain.commits import format_step_commit
from app.errors import ConflictError, GitError, PushRejectedError
from app.git import GitRepository
from tests.git.gitutil import AUTHOR, Origin, commit_count, git


async def test_clone_checks_out_main_without_submodules(clone: GitRepository, origin: Origin):
    assert (clone.path / "README.md").read_text() == "hello\n"
    assert await clone.head_sha() == origin.main_sha
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=clone.path) == "main"


async def test_clone_into_a_non_empty_folder_is_refused(origin: Origin, tmp_path: Path, base_env):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        await GitRepository.clone(
            str(origin.path), dest, timeout=20, author_name="a", author_email="a@b",
            allow_local_remotes=True, base_env=base_env,
        )  # fmt: skip
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


async def test_a_failed_clone_leaves_nothing_behind(tmp_path: Path, base_env):
    dest = tmp_path / "nothing"
    with pytest.raises(GitError, match="git clone failed"):
        await GitRepository.clone(
            str(tmp_path / "no-such-repo.git"), dest, timeout=20, author_name="a", author_email="a@b",
            allow_local_remotes=True, base_env=base_env,
        )  # fmt: skip
    assert not dest.exists()


async def test_worktree_add_creates_the_branch_from_base(worktree: GitRepository, origin: Origin):
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree.path) == "0007-demo"
    assert await worktree.head_sha() == origin.main_sha
    assert (worktree.path / "app.py").exists()


async def test_step_commit_is_tagged_found_and_pushed(worktree: GitRepository, origin: Origin):
    (worktree.path / "app.py").write_text("print('hello')\nprint('again')\n")
    (worktree.path / "new.txt").write_text("new\n")
    message = format_step_commit("feat", "greet twice", number=7, step_index=3, scope="app")

    sha = await worktree.commit_all(message)

    assert sha is not None
    assert len(sha) == 40
    assert git("log", "-1", "--format=%s%n%an <%ae>%n%cn <%ce>", cwd=worktree.path).splitlines() == [
        "feat(app): greet twice [protocol-0007/03]",
        f"{AUTHOR[0]} <{AUTHOR[1]}>",
        f"{AUTHOR[0]} <{AUTHOR[1]}>",
    ]
    assert await worktree.find_step_commit(7, 3) == sha
    assert await worktree.find_step_commit(7, 4) is None
    assert await worktree.find_step_commit(70, 3) is None

    await worktree.push("0007-demo")
    assert origin.rev_parse("refs/heads/0007-demo") == sha
    assert origin.rev_parse("refs/heads/main") == origin.main_sha


async def test_find_step_commit_ignores_a_tag_that_does_not_end_the_subject(worktree: GitRepository):
    (worktree.path / "a.txt").write_text("a\n")
    await worktree.commit_all("chore: mention [protocol-0007/05] in passing")
    (worktree.path / "b.txt").write_text("b\n")
    real = await worktree.commit_all("fix: the real one [protocol-0007/05]")
    (worktree.path / "c.txt").write_text("c\n")
    await worktree.commit_all("chore: later\n\nbody says [protocol-0007/05]")

    assert await worktree.find_step_commit(7, 5) == real


async def test_commit_all_with_nothing_to_commit_returns_none(worktree: GitRepository):
    before = commit_count(worktree.path)
    assert await worktree.commit_all("chore: nothing [protocol-0007/01]") is None
    assert commit_count(worktree.path) == before


async def test_commit_all_stages_deletions_and_untracked_files(worktree: GitRepository):
    (worktree.path / "README.md").unlink()
    (worktree.path / "deep" / "er").mkdir(parents=True)
    (worktree.path / "deep" / "er" / "x.txt").write_text("x\n")
    assert await worktree.changed_files() == ["README.md", "deep/er/x.txt"]

    assert await worktree.commit_all("chore: tidy [protocol-0007/02]") is not None
    assert await worktree.changed_files() == []
    assert git("ls-files", cwd=worktree.path).splitlines() == ["app.py", "deep/er/x.txt"]


async def test_commit_all_passes_each_staged_file_through_the_scrub(worktree: GitRepository):
    secret = b"s3cret-value"
    (worktree.path / "old.bin").write_bytes(b"\xff before")
    await worktree.commit_all("chore: a binary file [protocol-0007/03]")
    (worktree.path / "app.py").write_bytes(b"key = 's3cret-value'\n")  # text: rewritten
    (worktree.path / "old.bin").write_bytes(b"\xff " + secret)  # binary, in HEAD: kept as it was
    (worktree.path / "new.bin").write_bytes(b"\xff " + secret)  # binary, new: left out
    (worktree.path / "link").symlink_to("s3cret-value")  # a link's target is its content
    (worktree.path / "clean.txt").write_text("nothing here\n")
    seen = []

    def scrub(path: str, data: bytes) -> bytes | None:
        seen.append(path)
        if secret not in data:
            return data
        return None if data.startswith(b"\xff") else data.replace(secret, b"****")

    assert await worktree.commit_all("feat: scrubbed [protocol-0007/04]", scrub=scrub) is not None
    assert sorted(seen) == ["app.py", "clean.txt", "link", "new.bin", "old.bin"]
    committed = git("ls-files", cwd=worktree.path).splitlines()
    assert "new.bin" not in committed
    assert not (worktree.path / "new.bin").exists()
    assert git("show", "HEAD:app.py", cwd=worktree.path) == "key = '****'"
    assert git("show", "HEAD:link", cwd=worktree.path) == "****"
    assert (worktree.path / "old.bin").read_bytes() == b"\xff before"
    assert git("diff", "HEAD~1", "HEAD", "--stat", cwd=worktree.path).count("old.bin") == 0
    assert await worktree.changed_files() == []


async def test_diff_stats_survive_odd_file_names(worktree: GitRepository, origin: Origin):
    odd = "odd name\nwith newline.txt"
    (worktree.path / odd).write_text("one\ntwo\nthree\n")
    (worktree.path / "with space.md").write_text("a\n")
    (worktree.path / "app.py").write_text("print('bye')\n")
    (worktree.path / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert sorted(await worktree.changed_files()) == sorted([odd, "with space.md", "app.py", "blob.bin"])
    head = await worktree.commit_all("feat: odd files [protocol-0007/01]")
    assert head is not None

    stats = await worktree.diff_stats(origin.main_sha, head)

    by_path = {f.path: f for f in stats.files}
    assert set(by_path) == {odd, "with space.md", "app.py", "blob.bin"}
    assert (by_path[odd].insertions, by_path[odd].deletions) == (3, 0)
    assert (by_path["app.py"].insertions, by_path["app.py"].deletions) == (1, 1)
    assert by_path["blob.bin"].binary
    assert (stats.insertions, stats.deletions) == (5, 1)


async def test_diff_stats_report_renames(worktree: GitRepository, origin: Origin):
    git("mv", "README.md", "docs readme.md", cwd=worktree.path)
    head = await worktree.commit_all("docs: move [protocol-0007/01]")
    assert head is not None

    stats = await worktree.diff_stats(origin.main_sha, head)

    assert [(f.old_path, f.path) for f in stats.files] == [("README.md", "docs readme.md")]


async def test_worktree_add_resumes_on_an_existing_branch(
    clone: GitRepository, worktree: GitRepository, tmp_path: Path
):
    (worktree.path / "step.txt").write_text("done\n")
    sha = await worktree.commit_all("feat: step [protocol-0007/01]")

    # The same call again (a retried job) is a no-op on the same worktree.
    again = await clone.worktree_add(worktree.path, "0007-demo", "main")
    assert again.path == worktree.path
    assert await again.head_sha() == sha

    # Worktree gone (another machine, a cleaned disk): it comes back on the branch, not from main.
    await clone.worktree_remove(worktree.path)
    assert not worktree.path.exists()
    assert "0007-demo" in git("branch", "--list", "0007-demo", cwd=clone.path)
    elsewhere = tmp_path / "elsewhere"
    resumed = await clone.worktree_add(elsewhere, "0007-demo", "main")
    assert await resumed.head_sha() == sha
    assert (elsewhere / "step.txt").read_text() == "done\n"


async def test_worktree_add_refuses_a_path_used_by_another_branch(
    clone: GitRepository, worktree: GitRepository
):
    with pytest.raises(ConflictError, match="another branch"):
        await clone.worktree_add(worktree.path, "0008-other", "main")
    assert git("branch", "--list", "0008-other", cwd=clone.path) == ""


async def test_worktree_remove_refuses_uncommitted_work_unless_forced(worktree: GitRepository, clone):
    (worktree.path / "app.py").write_text("dirty\n")
    with pytest.raises(GitError, match="worktree failed"):
        await clone.worktree_remove(worktree.path)
    assert worktree.path.exists()
    await clone.worktree_remove(worktree.path, force=True)
    assert not worktree.path.exists()
    await clone.worktree_remove(worktree.path)  # already gone: nothing to do


async def test_remote_branches_are_listed_and_deleted(worktree: GitRepository, clone, origin: Origin):
    await worktree.push("0007-demo")
    assert await clone.list_remote_branches() == ["0007-demo", "main"]

    assert await clone.delete_remote_branch("0007-demo") is True
    assert origin.branches() == ["main"]
    assert await clone.list_remote_branches() == ["main"]
    assert await clone.delete_remote_branch("0007-demo") is False


async def test_fetch_sees_new_remote_branches(clone: GitRepository, origin: Origin, tmp_path: Path):
    other = tmp_path / "other"
    git("clone", "--quiet", str(origin.path), str(other))
    git("switch", "--quiet", "-c", "feature", cwd=other)
    git("-c", "user.name=O", "-c", "user.email=o@x", "commit", "--allow-empty", "-qm", "x", cwd=other)
    git("push", "--quiet", "origin", "feature", cwd=other)

    await clone.fetch()

    assert git("rev-parse", "origin/feature", cwd=clone.path) == origin.rev_parse("refs/heads/feature")


async def test_push_is_never_forced(worktree: GitRepository, origin: Origin, tmp_path: Path):
    (worktree.path / "a.txt").write_text("a\n")
    await worktree.commit_all("feat: a [protocol-0007/01]")
    await worktree.push("0007-demo")
    git("reset", "--quiet", "--hard", "HEAD~1", cwd=worktree.path)
    (worktree.path / "b.txt").write_text("b\n")
    await worktree.commit_all("feat: b [protocol-0007/01]")
    remote_before = origin.rev_parse("refs/heads/0007-demo")

    with pytest.raises(PushRejectedError, match="non-fast-forward") as refused:
        await worktree.push("0007-demo")
    assert refused.value.details == {"branch": "0007-demo", "remote": "origin"}
    assert origin.rev_parse("refs/heads/0007-demo") == remote_before


async def test_a_push_to_a_missing_remote_is_a_git_error_not_a_rejection(
    worktree: GitRepository, origin: Origin
):
    shutil.rmtree(origin.path)
    with pytest.raises(GitError, match="git push failed") as failed:
        await worktree.push("0007-demo")
    assert not isinstance(failed.value, PushRejectedError)


async def test_a_missing_repository_is_a_git_error(tmp_path: Path, base_env):
    repo = GitRepository(
        tmp_path / "absent", timeout=5, author_name="a", author_email="a@b", base_env=base_env
    )
    with pytest.raises(GitError, match="no such directory"):
        await repo.head_sha()


async def test_discard_changes_drops_uncommitted_work_and_never_a_commit(worktree: GitRepository):
    (worktree.path / "kept.txt").write_text("committed by a step whose job then died\n")
    committed = await worktree.commit_all("feat: kept [protocol-0007/01]")
    (worktree.path / "app.py").write_text("half-written by a killed agent\n")
    (worktree.path / "new_dir").mkdir()
    (worktree.path / "new_dir" / "scratch.txt").write_text("x")
    assert await worktree.changed_files()
    await worktree.discard_changes()
    assert await worktree.changed_files() == []
    assert (worktree.path / "app.py").read_text() == "print('hi')\n"
    assert not (worktree.path / "new_dir").exists()
    assert await worktree.head_sha() == committed


async def test_ancestry_and_an_empty_step_commit(worktree: GitRepository):
    base = await worktree.head_sha()
    assert await worktree.commit_all("feat: nothing [protocol-0007/01]") is None
    empty = await worktree.commit_all(
        "feat: x [protocol-0007/01]", empty_message="chore: x, no changes [protocol-0007/01]"
    )
    assert empty is not None
    assert empty != base
    assert await worktree.find_step_commit(7, 1) == empty
    assert await worktree.is_ancestor(base, empty)
    assert not await worktree.is_ancestor(empty, base)


async def test_branch_and_remote_lookups(clone: GitRepository):
    assert await clone.has_branch("main")
    assert not await clone.has_branch("nope")
    assert await clone.has_remote("origin")
    assert not await clone.has_remote("upstream")


async def test_worktree_add_finds_the_branch_where_another_worktree_holds_it(
    clone: GitRepository, worktree: GitRepository, tmp_path: Path
):
    """Two workers of one machine with different projects roots, on one local repository: the second
    gets the worktree the first made (git keeps one per branch), not `already checked out` refused."""
    (worktree.path / "step.txt").write_text("done\n")
    sha = await worktree.commit_all("feat: step [protocol-0007/01]")
    other_root = tmp_path / "other-root" / "demo" / "worktrees" / "0007-demo"
    found = await clone.worktree_add(other_root, "0007-demo", "main")
    assert found.path == worktree.path
    assert await found.head_sha() == sha
    assert not other_root.exists()


async def test_init_makes_an_empty_repository_on_main_with_nothing_from_a_template(tmp_path: Path, base_env):
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")

    repo = await GitRepository.init(
        folder, timeout=20, author_name="a", author_email="a@b", base_env=base_env
    )
    sha = await repo.commit_all("first")

    assert sha == await repo.head_sha()
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=folder) == "main"
    assert git("show", "--name-only", "--format=%s", "HEAD", cwd=folder).split() == ["first", "a.txt"]
    assert not (folder / ".git" / "hooks").exists(), "no template (its sample hooks, say) copied in"
