"""Reading and writing one protocol folder inside a worktree, without ever leaving it.

The worktree is shared with agents, which can create symlinks: every folder on the way is checked
with lstat and files are opened with O_NOFOLLOW, so a planted link is refused, never followed.
A plan is written into a fresh sibling folder and renamed into place: all of it, or none.

Every call here touches the disk: from async code, call it through `in_folder` (a worker thread),
never on the event loop the API shares with the job worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from app.domain.plan import AcceptedPlan
from app.domain.protocol_files import (
    CONTEXT_FILE,
    LOG_FILE,
    PLAN_FILE,
    PROTOCOLS_DIR,
    artifact_path,
    protocol_folder,
)
from app.errors import ConflictError, InvalidInputError, NotFoundError

MAX_READ_BYTES = 4 * 1024 * 1024
T = TypeVar("T")


class ProtocolFolder:
    """`.protocols/<protocol_name>/` of one worktree."""

    def __init__(self, worktree: Path, protocol_name: str) -> None:
        self.worktree = worktree.resolve()
        self.relative = protocol_folder(protocol_name)
        self.path = self.worktree / self.relative

    def write_plan(self, plan: AcceptedPlan, *, replace: bool = False) -> list[str]:
        """Write plan.md, context.md, log.md and the step files at once; their relative paths."""
        protocols = _real_dir(self.worktree, PurePosixPath(PROTOCOLS_DIR))
        if _exists(self.path) and not replace:
            raise ConflictError(f"{self.relative} already holds a plan", field="protocol")
        staging = protocols / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(mode=0o755)
        try:
            files = {PLAN_FILE: plan.plan_md, CONTEXT_FILE: plan.context_md, LOG_FILE: plan.log_md}
            files |= {step.filename: step.content for step in plan.steps}
            for name, content in files.items():
                _write_new(staging / str(artifact_path(name)), content)
            self._swap_in(staging, protocols)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [str(self.relative / name) for name in files]

    def _swap_in(self, staging: Path, protocols: Path) -> None:
        if not _exists(self.path):
            os.rename(staging, self.path)
            return
        if self.path.is_symlink() or not self.path.is_dir():
            raise InvalidInputError(f"{self.relative} is not a plain folder", field="protocol")
        retired = protocols / f".retired-{uuid.uuid4().hex}"
        os.rename(self.path, retired)
        os.rename(staging, self.path)
        shutil.rmtree(retired, ignore_errors=True)

    def write(self, name: str, content: str) -> str:
        """Create or replace one artifact (QA report, log); step files and the plan are not writable here."""
        relative = artifact_path(name)
        if len(relative.parts) == 1 and (relative.suffix == ".md"):
            raise InvalidInputError(f"{name!r} belongs to the plan; write_plan owns it", field="name")
        folder = _real_dir(self.worktree, self.relative / relative.parent)
        target = folder / relative.name
        temporary = folder / f".{relative.name}.{uuid.uuid4().hex}.tmp"
        _write_new(temporary, content)
        os.replace(temporary, target)  # replaces a file, or a planted symlink, never writes through it
        return str(self.relative / relative)

    def read(self, name: str, *, max_bytes: int = MAX_READ_BYTES) -> str:
        """The text of one artifact; NotFoundError when missing, refused when it is a link."""
        relative = artifact_path(name)
        try:
            folder = _real_dir(self.worktree, self.relative / relative.parent, create=False)
            fd = os.open(folder / relative.name, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFoundError(f"artifact {name!r} not found") from None
        except OSError as exc:
            raise InvalidInputError(f"artifact {name!r} cannot be read", field="name") from exc
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InvalidInputError(f"artifact {name!r} is not a file", field="name")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidInputError(f"artifact {name!r} is larger than {max_bytes} bytes", field="name")
        return data.decode("utf-8", errors="replace")

    def list(self) -> list[str]:
        """Every regular file of the folder, as names relative to it (links and hidden files left out)."""
        if not _exists(self.path) or self.path.is_symlink():
            return []
        found = []
        for root, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not Path(root, d).is_symlink())
            for name in sorted(files):
                full = Path(root, name)
                if not name.startswith(".") and not full.is_symlink() and full.is_file():
                    found.append(str(full.relative_to(self.path)))
        return found


async def in_folder(worktree: str | Path | None, protocol_name: str, use: Callable[[ProtocolFolder], T]) -> T:
    """`use` on the run's protocol folder, in a worker thread; NotFoundError when this machine has no
    such worktree (the run was planned elsewhere, or not yet)."""

    def run() -> T:
        if worktree is None or not Path(worktree).is_dir():
            raise NotFoundError("this protocol has no artifacts on this machine yet", field="protocol_id")
        return use(ProtocolFolder(Path(worktree), protocol_name))

    return await asyncio.to_thread(run)


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _real_dir(worktree: Path, relative: PurePosixPath, *, create: bool = True) -> Path:
    """`worktree/relative`, made of real folders only (created when missing and `create`)."""
    current = worktree
    for part in relative.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if not create:
                raise
            current.mkdir(mode=0o755)
            continue
        if not stat.S_ISDIR(mode):
            raise InvalidInputError(f"{current.relative_to(worktree)} is not a plain folder", field="name")
    return current


def _write_new(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)
