"""One asyncio.Lock per repository, so two coroutines of this process never interleave git commands
on it (two `git add` at once fail on `index.lock`; a fetch racing a commit can lose a ref update).

This only serialises coroutines of one process. Across processes and machines the services layer
holds a Postgres advisory lock on the project (DESIGN.md, "Scaling out"), which this does not replace.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

# Locks are kept per event loop (an asyncio.Lock is bound to the loop it first waits on) and only
# while someone holds a reference: an idle lock is dropped, so the maps never grow without bound.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakValueDictionary[str, asyncio.Lock]]
_LOCKS = weakref.WeakKeyDictionary()


def repository_lock(key: Path) -> asyncio.Lock:
    """The lock of the repository whose git directory is `key` (resolved, so aliases share it)."""
    loop = asyncio.get_running_loop()
    per_loop = _LOCKS.get(loop)
    if per_loop is None:
        per_loop = _LOCKS[loop] = weakref.WeakValueDictionary()
    name = str(key.resolve())
    lock = per_loop.get(name)
    if lock is None:
        lock = per_loop[name] = asyncio.Lock()
    return lock
