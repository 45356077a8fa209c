"""How a run's branch travels between machines as git bundles (app.services.travel keeps them).

A bundle holds the objects of the commits from a prerequisite (`since`) to a tip; applied to a
repository that has the prerequisite, it adds those objects. Nothing here moves a branch backwards:
`fast_forward` moves the checked-out branch only onto a descendant of where it is.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from app.errors import ConflictError
from app.git.config_guard import check_repository
from app.git.parsing import bundle_refs
from app.git.plumbing import RepositoryPlumbing
from app.git.validation import check_revision

# A ref of our own, set for the moment a bundle is written: `git bundle` packs refs, not bare shas.
_TRAVEL_REF = "refs/tasksgodzilla/travel"


class BranchTravel(RepositoryPlumbing):
    """Bundle operations of a repository (GitRepository inherits them)."""

    async def has_commit(self, sha: str) -> bool:
        """Whether the commit `sha` is in this repository's objects."""
        check_revision(sha, field="sha")
        async with self._locked():
            found = await self._git(
                "cat-file", "-e", "--end-of-options", f"{sha}^{{commit}}", ok_codes=(0, 1, 128)
            )
        return found.exit_code == 0

    async def commit_of(self, rev: str) -> str:
        """The full sha of the commit `rev` names (`HEAD~1`, a branch, a short sha)."""
        check_revision(rev, field="rev")
        async with self._locked():
            found = await self._git("rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
        return found.text.strip()

    async def bundle(self, tip: str, since: str) -> bytes:
        """The objects from `since` (excluded, the bundle's prerequisite) to `tip`, as a git bundle.

        `git bundle` packs refs, not bare shas: HEAD, when the bundle made of it says HEAD is `tip`
        (a commit just made: one git command), else a ref of our own set for the moment."""
        check_revision(tip, field="tip")
        check_revision(since, field="since")
        async with self._locked():
            if _is_sha(tip):
                created = await self._git(
                    "bundle", "create", "--quiet", "-", "HEAD", f"^{since}", ok_codes=(0, 128)
                )
                if created.exit_code == 0 and bundle_refs(created.stdout).get("HEAD") == tip:
                    return created.stdout
        ref = f"{_TRAVEL_REF}-{uuid.uuid4().hex}"
        async with self._locked():
            await self._git("update-ref", "--end-of-options", ref, f"{tip}^{{commit}}")
            try:
                created = await self._git("bundle", "create", "--quiet", "-", ref, f"^{since}")
            finally:
                await self._git("update-ref", "-d", "--end-of-options", ref)
        return created.stdout

    async def unbundle(self, data: bytes) -> None:
        """Add a bundle's objects to this repository (its prerequisite must be here already)."""
        async with self._locked():
            common = check_repository(self.path).dirs.common_dir
            path = Path(common) / f"tasksgodzilla-{uuid.uuid4().hex}.bundle"
            await asyncio.to_thread(_write_private, path, data)
            try:
                await self._git("bundle", "unbundle", "--end-of-options", str(path))
            finally:
                await asyncio.to_thread(path.unlink, missing_ok=True)

    async def fast_forward(self, sha: str) -> None:
        """Move the checked-out branch (and working tree) forward to `sha`, a descendant of HEAD; a
        ConflictError when it is not one (that move would drop commits)."""
        check_revision(sha, field="sha")
        async with self._locked():
            ahead = await self._git(
                "merge-base", "--is-ancestor", "--end-of-options", "HEAD", sha, ok_codes=(0, 1)
            )
            if ahead.exit_code != 0:
                raise ConflictError(f"{sha[:12]} is not ahead of this branch: it cannot be fast-forwarded")
            await self._git("reset", "--hard", "--quiet", f"{sha}^{{commit}}", "--")


def _is_sha(rev: str) -> bool:
    return len(rev) in (40, 64) and all(c in "0123456789abcdef" for c in rev)


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
