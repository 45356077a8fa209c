"""Scrubbing what is about to be committed: each staged file passes a caller's check, which may
rewrite it (a secret replaced) or refuse it (a binary file holding one): then the commit keeps the
file as HEAD has it, or leaves out a new one.

The git layer knows nothing of secrets: the check is the caller's (app.services.execution).
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path

from app.git.plumbing import RepositoryPlumbing

# (path in the repository, its staged content) → the content to commit, or None to leave it out.
Scrub = Callable[[str, bytes], bytes | None]


class IndexScrubbing(RepositoryPlumbing):
    """The scrubbing step of a commit (GitRepository inherits it; its caller holds the lock)."""

    async def _scrub_index(self, scrub: Scrub, staged: list[str] | None = None) -> bool:
        """Pass every added or modified staged file through `scrub`; re-stage what it rewrote; what it
        refused is left as HEAD has it (a new file is deleted). Whether anything changed.

        `staged`: the paths of the staged diff when the caller has them (a deleted one is skipped:
        nothing is there to scrub), else they are asked of git."""
        if staged is None:
            listed = await self._git(
                "diff", "--cached", "--name-only", "-z", "--no-renames", "--diff-filter=d", "--no-ext-diff"
            )
            paths = [p for p in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
        else:
            paths = staged
        changed = False
        for path in paths:
            outcome = await asyncio.to_thread(_scrub_file, self.path, path, scrub)
            changed |= outcome != "kept"
            if outcome == "rewritten":
                await self._git("add", "--end-of-options", path)
            elif outcome == "refused":  # the file goes back to what HEAD holds (or away, if new)
                await self._git("reset", "--quiet", "HEAD", "--", path)
                before = await self._git("cat-file", "blob", f"HEAD:{path}", ok_codes=(0, 128))
                if before.exit_code == 0:
                    await asyncio.to_thread((self.path / path).write_bytes, before.stdout)
        return changed


def _scrub_file(root: Path, path: str, scrub: Scrub) -> str:
    """ "kept", "rewritten" or "refused". Links are read as links (their target is what git stores),
    never followed; anything that is neither a file nor a link (a submodule) is kept."""
    full = root / path
    try:
        info = os.lstat(full)
    except FileNotFoundError:  # a staged deletion: nothing to scrub
        return "kept"
    if stat.S_ISLNK(info.st_mode):
        target = os.fsencode(os.readlink(full))
        cleaned = scrub(path, target)
        if cleaned == target:
            return "kept"
        full.unlink()
        if cleaned is None:
            return "refused"
        os.symlink(os.fsdecode(cleaned), full)
        return "rewritten"
    if not stat.S_ISREG(info.st_mode):
        return "kept"
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as file:
        data = file.read()
    cleaned = scrub(path, data)
    if cleaned == data:
        return "kept"
    if cleaned is None:
        full.unlink()
        return "refused"
    fd = os.open(full, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    with os.fdopen(fd, "wb") as file:
        file.write(cleaned)
    return "rewritten"
