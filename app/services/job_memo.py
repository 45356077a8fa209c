"""What one job reads once: values that hold for the length of a job (a run's recorded policy, a
project's git credential), kept for the job so that each of its steps does not read them again.

Outside a job (an API request, a CLI command) nothing is kept: every call reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_memo: ContextVar[dict[Hashable, Any] | None] = ContextVar("tasksgodzilla_job_memo", default=None)


@contextlib.contextmanager
def job_memo() -> Iterator[None]:
    """Within the block (one job's try), `memoised` keeps what it reads."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


async def memoised(
    key: Hashable, load: Callable[[], Awaitable[T]], *, keep: Callable[[T], bool] = lambda _: True
) -> T:
    """`load()`, or what it gave earlier in this job; a value `keep` refuses is not kept."""
    memo = _memo.get()
    if memo is None:
        return await load()
    if key in memo:
        return memo[key]
    value = await load()
    if keep(value):
        memo[key] = value
    return value


async def prefetch(
    key: Hashable, load: Callable[[], Awaitable[T]], *, keep: Callable[[T], bool] = lambda _: True
) -> None:
    """Within a job, `memoised(key, load)` now (`load` reading on a connection the caller holds
    anyway, so the job makes no read of its own for it later); outside a job, nothing."""
    memo = _memo.get()
    if memo is not None and key not in memo:
        await memoised(key, load, keep=keep)


def forget(key: Hashable) -> None:
    """Drop what this job kept under `key` (it has just changed)."""
    memo = _memo.get()
    if memo is not None:
        memo.pop(key, None)
