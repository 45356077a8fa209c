"""Our settings' values wiped from the environment block the kernel shows as /proc/<pid>/environ.

That file shows the block the process was started with, whatever it removed from its environment
since. Anyone who may read it (the same user, root) would find the database URL and the tokens
there, so once the settings are read (and the variables removed from the environment by
`app.config_environment.forget_our_variables`), their entries in the block are overwritten with NUL
bytes. Linux only; elsewhere, and where /proc cannot tell where the block is, nothing is done.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterable
from pathlib import Path

# Fields 50 and 51 of /proc/<pid>/stat (Linux 3.5+): where the block starts and ends. Counted after
# the command name's closing parenthesis, where field 3 is the first.
_ENV_START_FIELD, _ENV_END_FIELD = 50 - 3, 51 - 3


def wipe_from_environ_block(names: Iterable[str]) -> int:
    """Overwrite each `NAME=value` entry of the initial environment whose name is in `names`; how many.

    Nothing in the process uses those bytes any more: Python copied the environment at start-up, and
    the C library's table no longer points at removed variables."""
    wanted = {name.encode() for name in names}
    if not wanted or not sys.platform.startswith("linux"):
        return 0
    try:
        fields = Path("/proc/self/stat").read_bytes().rsplit(b")", 1)[1].split()
        start, end = int(fields[_ENV_START_FIELD]), int(fields[_ENV_END_FIELD])
    except (OSError, IndexError, ValueError):
        return 0
    if not 0 < start < end:
        return 0
    block = ctypes.string_at(start, end - start)
    wiped, offset = 0, 0
    for entry in block.split(b"\0"):
        if entry.split(b"=", 1)[0] in wanted:
            ctypes.memset(start + offset, 0, len(entry))
            wiped += 1
        offset += len(entry) + 1
    return wiped
