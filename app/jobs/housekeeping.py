"""This machine's own upkeep, run beside its job workers rather than as a queued duty: what it tidies
(worktrees) is on this machine's disk, which a duty taken by another machine's worker cannot reach."""

from __future__ import annotations

import asyncio
import contextlib

from app.logs import get_logger
from app.services.context import Services
from app.services.worktree_cleanup import remove_finished_worktrees

log = get_logger(__name__)

FIRST_TIDY_SECONDS = 60.0  # not at start: a command's short-lived worker should not pay for it
TIDY_SECONDS = 3600.0


async def tidy_this_machine(svc: Services, stopping: asyncio.Event) -> None:
    """Remove finished runs' worktrees a minute after start, then hourly, until `stopping` is set."""
    wait = FIRST_TIDY_SECONDS
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), wait)
            return
        wait = TIDY_SECONDS
        try:
            await remove_finished_worktrees(svc)
        except Exception:
            log.exception("tidying this machine's worktrees failed; the next round tries again")
