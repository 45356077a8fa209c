"""One git repository (a clone or one of its worktrees) and the operations the services need on it.

Every public operation takes the repository's lock (app.git.locks) for its whole duration, so the
git commands of two operations never interleave in this process. Worktrees share the lock of their
main clone, since they share its objects and refs.

Every git command checks the repository's config first (app.git.plumbing); those that talk to the
remote check its URLs too, and they alone get the project's credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from app.domain.commits import parse_step_tag, step_tag
from app.domain.refnames import check_branch_name
from app.errors import ConflictError, InvalidInputError
from app.git.clone_dest import prepare_clone_dest, remove_clone_debris
from app.git.config_guard import check_nested_repositories, check_repository
from app.git.credentials import CredentialSource, constant_source, split_credentials
from app.git.locks import repository_lock
from app.git.parsing import (
    DiffStats,
    TreeEntry,
    Worktree,
    WorktreeState,
    committed_sha,
    parse_log_subjects,
    parse_ls_tree_long,
    parse_numstat,
    parse_status_paths,
    parse_status_v2,
    parse_worktrees,
)
from app.git.remote_guard import RemoteGuard
from app.git.remotes import RemoteOperations
from app.git.runner import GitResult
from app.git.scrubbing import IndexScrubbing, Scrub
from app.git.travel import BranchTravel
from app.git.validation import check_remote_name, check_revision

# What git leaves in a working tree's git dir while an operation waits (reset --hard ends each).
_IN_PROGRESS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD")


def _real(path: Path) -> Path:
    # Path arithmetic and a readlink or two: cheap enough to stay on the event loop.
    return Path(path).resolve()


class GitRepository(RemoteOperations, BranchTravel, IndexScrubbing):
    """Git operations on the repository (or worktree) at `path`."""

    # --- clone -------------------------------------------------------------------------------------

    @classmethod
    async def clone(
        cls,
        url: str,
        dest: Path,
        *,
        timeout: float,  # noqa: ASYNC109 - the deadline of each git command, as in the constructor
        author_name: str,
        author_email: str,
        allow_local_remotes: bool = False,
        base_env: Mapping[str, str] | None = None,
        credentials: CredentialSource | None = None,
        remote_guard: RemoteGuard | None = None,
    ) -> GitRepository:
        """Clone `url` into `dest` (absent or empty) without submodules; nothing is left behind on failure.

        Credentials never reach `.git/config`: those in `url` are taken out of it, and they (or
        `credentials`) reach git only through its credential helper, now and on later remote calls.
        """
        url, in_url = split_credentials(url)
        if in_url is not None and credentials is None:
            credentials = constant_source(in_url)
        repo = cls(
            dest,
            timeout=timeout,
            author_name=author_name,
            author_email=author_email,
            allow_local_remotes=allow_local_remotes,
            base_env=base_env,
            remote_url=url,
            credentials=credentials,
            remote_guard=remote_guard,
        )
        pins = await repo.remote_guard.pins([url])
        dest = repo.path
        existed = prepare_clone_dest(dest)
        credential = await credentials() if credentials is not None else None
        async with repository_lock(dest / ".git"):
            try:
                args = ["clone", "--no-recurse-submodules", "--quiet", "--end-of-options", url, str(dest)]
                await repo.runner.run(args, cwd=dest.parent, config=pins, credential=credential)
            except BaseException:
                # A killed clone cannot clean up after itself; whatever is in `dest` now is its debris.
                await asyncio.to_thread(remove_clone_debris, dest, keep_folder=existed)
                raise
        return repo

    @classmethod
    async def init(
        cls,
        path: Path,
        *,
        timeout: float,  # noqa: ASYNC109 - the deadline of each git command, as in the constructor
        author_name: str,
        author_email: str,
        base_env: Mapping[str, str] | None = None,
        branch: str = "main",
    ) -> GitRepository:
        """A new repository with no commit, on `branch`, in the existing folder `path` (no template:
        nothing, hooks included, is copied in from a template folder)."""
        check_branch_name(branch)
        repo = cls(
            path, timeout=timeout, author_name=author_name, author_email=author_email, base_env=base_env
        )
        async with repository_lock(repo.path / ".git"):
            await repo.runner.run(
                ["init", "--quiet", "--template=", f"--initial-branch={branch}", "--", str(repo.path)],
                cwd=repo.path,
            )
        return repo

    # --- worktrees ---------------------------------------------------------------------------------

    async def worktrees(self) -> list[Worktree]:
        """Every worktree git knows of for this repository, the main one first."""
        async with self._locked():
            return await self._worktrees()

    async def _worktrees(self) -> list[Worktree]:
        return parse_worktrees((await self._git("worktree", "list", "--porcelain", "-z")).stdout)

    async def worktree_add(self, path: Path, branch: str, base_ref: str) -> GitRepository:
        """A worktree at `path` on `branch`: created from `base_ref` if the branch is new, else reused.

        Calling it again for the same path and branch is a no-op, so an interrupted job can resume.
        A branch already checked out in another live worktree of this repository (a second worker of
        this machine, with another projects root, on a project registered by local path) is that
        worktree: git keeps one worktree per branch, and the jobs of one run never overlap.
        To recreate a protocol's worktree from the mirror, fetch first and pass `origin/<branch>` (or
        the recorded head sha) as `base_ref`.
        """
        check_branch_name(branch)
        check_revision(base_ref, field="base_ref")
        path = _real(path)
        async with self._locked():
            live = [w for w in await self._worktrees() if not w.prunable]
            for worktree in live:
                if _real(Path(worktree.path)) != path:
                    continue
                if worktree.branch != f"refs/heads/{branch}":
                    raise ConflictError(f"{path} is already a worktree on another branch", field="path")
                return self.sibling(path)
            holder = next((w for w in live if w.branch == f"refs/heads/{branch}"), None)
            if holder is not None and _real(Path(holder.path)) != _real(self.path):
                return self.sibling(Path(holder.path))
            await self._git("worktree", "prune")
            if await self._branch_exists(branch):
                await self._git("worktree", "add", "--end-of-options", str(path), branch)
            else:
                await self._git(
                    "worktree", "add", "-b", branch, "--end-of-options", str(path), f"{base_ref}^{{commit}}"
                )
        return self.sibling(path)

    async def worktree_remove(self, path: Path, *, force: bool = False) -> None:
        """Remove the worktree at `path` (its branch stays); `force` discards uncommitted changes."""
        path = _real(path)
        async with self._locked():
            known = [_real(Path(w.path)) for w in await self._worktrees()]
            if path in known:
                await self._git(
                    "worktree", "remove", *(["--force"] if force else []), "--end-of-options", str(path)
                )
            await self._git("worktree", "prune")

    async def has_branch(self, branch: str) -> bool:
        """Whether the local branch exists."""
        async with self._locked():
            return await self._branch_exists(branch)

    async def has_remote(self, remote: str = "origin") -> bool:
        """Whether a remote of that name has a URL: read from the repository's config, checked as
        before any git command (no git process: the config guard has parsed it already)."""
        check_remote_name(remote)
        async with self._locked():
            return bool(check_repository(self.path).values(f"remote.{remote}.url"))

    async def _branch_exists(self, branch: str) -> bool:
        result = await self._git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{branch}", ok_codes=(0, 1)
        )
        return result.exit_code == 0

    # --- commits -----------------------------------------------------------------------------------

    async def commit_all(
        self, message: str, *, empty_message: str | None = None, scrub: Scrub | None = None
    ) -> str | None:
        """Stage everything in the worktree and commit it as the configured identity.

        With nothing to commit: None, or, given `empty_message`, an empty commit with that message
        (a step that rightly changed nothing still leaves its tagged commit). Given `scrub`, each
        staged file passes it first (app/git/scrubbing.py).
        """
        sha, _ = await self.commit_all_with_stats(message, empty_message=empty_message, scrub=scrub)
        return sha

    async def commit_all_with_stats(
        self, message: str, *, empty_message: str | None = None, scrub: Scrub | None = None
    ) -> tuple[str | None, DiffStats]:
        """commit_all, and what the commit changed (as `diff_stats` of it against its parent would
        say: the staged diff, read once, tells both whether to commit and what)."""
        if not message.strip() or (empty_message is not None and not empty_message.strip()):
            raise InvalidInputError("a commit message is required", field="message")
        identity = [("user.name", self.author_name), ("user.email", self.author_email)]
        async with self._locked():
            await self._check_nested_repositories()
            await self._git("add", "--all", "--end-of-options")
            staged = await self._staged_numstat()
            # Scrubbed from the staged diff's paths; read again only when scrubbing changed a file.
            if scrub is not None and staged.stdout:
                paths = parse_numstat(staged.stdout).paths
                if await self._scrub_index(scrub, paths):
                    staged = await self._staged_numstat()
            options = ["--no-verify", "--file=-"]
            if not staged.stdout:
                if empty_message is None:
                    return None, DiffStats()
                message, options = empty_message, [*options, "--allow-empty"]
            # Unabbreviated, the summary line names the new commit: no rev-parse after it.
            said = await self._git(
                "commit", *options, stdin=message.encode(), config=[*identity, ("core.abbrev", "40")]
            )
            sha = committed_sha(said.stdout)
            if sha is None or check_repository(self.path).values("extensions.objectformat") not in (
                [],
                ["sha1"],
            ):
                sha = await self._head_sha()  # a summary we cannot read, or longer object names
            return sha, parse_numstat(staged.stdout)

    async def _staged_numstat(self) -> GitResult:
        return await self._git(
            "diff", "--cached", "--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv", "--"
        )

    async def _check_nested_repositories(self) -> None:
        """`git add` runs `git status` inside every checked-out submodule (a repository an agent may
        have made and staged in the worktree): their config must pass the same check as ours."""
        check_nested_repositories(self.path, (await self._git("ls-files", "--stage", "-z")).stdout)

    async def state(self) -> WorktreeState:
        """HEAD's commit and whether anything is uncommitted, from one `git status`; a merge,
        cherry-pick or revert left in progress counts as uncommitted (discard_changes ends it)."""
        async with self._locked():
            result = await self._git(
                "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--no-renames"
            )
            found = parse_status_v2(result.stdout)
            git_dir = check_repository(self.path).dirs.git_dir
        if found.clean and any((git_dir / name).exists() for name in _IN_PROGRESS):
            return WorktreeState(found.head, clean=False)
        return found

    async def discard_changes(self) -> None:
        """Drop uncommitted changes and untracked files: what an interrupted agent left goes.

        Only the working tree is reset, to the branch's own tip: a commit is never dropped.
        """
        async with self._locked():
            await self._git("reset", "--hard", "--quiet", "HEAD", "--")
            await self._git("clean", "-d", "--force", "--quiet")

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether `ancestor` is `descendant` or reachable from it."""
        check_revision(ancestor, field="ancestor")
        check_revision(descendant, field="descendant")
        async with self._locked():
            result = await self._git(
                "merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant, ok_codes=(0, 1)
            )
        return result.exit_code == 0

    async def head_sha(self) -> str:
        """The commit HEAD points at."""
        async with self._locked():
            return await self._head_sha()

    async def _head_sha(self) -> str:
        return (await self._git("rev-parse", "--verify", "--end-of-options", "HEAD^{commit}")).text.strip()

    async def find_step_commit(self, number: int, step_index: int) -> str | None:
        """The newest commit on the current branch whose subject ends with the step's tag, or None."""
        tag = step_tag(number, step_index)
        async with self._locked():
            result = await self._git(
                "log", "--fixed-strings", f"--grep={tag}", "-z", "--format=%H%x09%s",
                "--end-of-options", "HEAD", "--",
            )  # fmt: skip
        for sha, subject in parse_log_subjects(result.stdout):
            # --grep matches anywhere in the message; only a tag ending the subject counts.
            if parse_step_tag(subject) == (number, step_index):
                return sha
        return None

    async def diff_stats(self, base: str, head: str) -> DiffStats:
        """Files, lines added and lines removed from `base` to `head`."""
        check_revision(base, field="base")
        check_revision(head, field="head")
        async with self._locked():
            result = await self._git(
                "diff", "--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv",
                "--end-of-options", base, head, "--",
            )  # fmt: skip
        return parse_numstat(result.stdout)

    async def changed_files(self) -> list[str]:
        """Paths with uncommitted changes in the working tree, untracked files included."""
        async with self._locked():
            result = await self._git(
                "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--no-ahead-behind"
            )
        return parse_status_paths(result.stdout)

    async def files_at(self, commit: str, folder: str) -> list[TreeEntry]:
        """Every entry under `folder` at `commit`, at any depth (paths from the repository's root)."""
        check_revision(commit, field="commit")
        async with self._locked():
            listing = await self._git(
                "ls-tree", "-r", "-l", "-z", "--full-tree", "--end-of-options", commit, "--", f"{folder}/"
            )
        return parse_ls_tree_long(listing.stdout)

    async def file_at(
        self, commit: str, path: str, *, max_bytes: int
    ) -> tuple[TreeEntry | None, bytes | None]:
        """The tree entry of `path` at `commit` (None: no such file) and its content, which is None
        unless it is a regular file of at most `max_bytes` (its size is read first: a big blob is never
        loaded; a symlink's target is never followed)."""
        check_revision(commit, field="commit")
        async with self._locked():
            listing = await self._git(
                "ls-tree", "-l", "-z", "--full-tree", "--end-of-options", commit, "--", path
            )
            entry = next((e for e in parse_ls_tree_long(listing.stdout) if e.path == path), None)
            if entry is None or entry.kind != "blob" or entry.mode not in ("100644", "100755"):
                return entry, None
            if entry.size is None or entry.size > max_bytes:
                return entry, None
            blob = await self._git("cat-file", "blob", entry.sha)
        return entry, blob.stdout
