"""The folder a clone goes into: made ready before, emptied again when the clone failed."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.errors import ConflictError


def prepare_clone_dest(dest: Path) -> bool:
    """Whether `dest` already existed (empty); its parent is created. A non-empty `dest` is refused."""
    existed = dest.exists()
    if existed and (not dest.is_dir() or any(dest.iterdir())):
        raise ConflictError(f"cannot clone into {dest}: it exists and is not empty", field="dest")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return existed


def remove_clone_debris(dest: Path, *, keep_folder: bool) -> None:
    if not keep_folder:
        shutil.rmtree(dest, ignore_errors=True)
    elif dest.is_dir():
        for child in dest.iterdir():  # the folder was empty before the clone
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
