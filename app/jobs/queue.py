"""The services' job queue, on Procrastinate: defer with locks, abort, and see what is pending."""

from __future__ import annotations

from typing import Any

import procrastinate
from procrastinate import exceptions

from app.domain.workflow import Work


class ProcrastinateQueue:
    """Implements app.services.context.JobQueue."""

    def __init__(self, app: procrastinate.App) -> None:
        self.app = app

    async def defer(self, work: Work) -> bool:
        """Queue `work`; False when the same work (its queueing lock) is already waiting."""
        task = self.app.configure_task(work.job.value, lock=work.lock, queueing_lock=work.queueing_lock)
        try:
            await task.defer_async(**work.kwargs)
        except exceptions.AlreadyEnqueued:
            return False
        return True

    async def abort(self, locks: list[str]) -> int:
        """Cancel waiting jobs holding one of `locks` and stop running ones (their task is cancelled)."""
        manager = self.app.job_manager
        rows: list[dict[str, Any]] = await self.app.connector.execute_query_all_async(
            "SELECT id FROM procrastinate_jobs WHERE lock = ANY(%(locks)s) AND status IN ('todo', 'doing')",
            locks=locks,
        )
        for row in rows:
            await manager.cancel_job_by_id_async(row["id"], abort=True)
        return len(rows)

    async def pending_locks(self, queueing_locks: list[str]) -> set[str]:
        """Which of these queueing locks belong to a job waiting or running now."""
        if not queueing_locks:
            return set()
        rows: list[dict[str, Any]] = await self.app.connector.execute_query_all_async(
            "SELECT DISTINCT queueing_lock FROM procrastinate_jobs "
            "WHERE queueing_lock = ANY(%(locks)s) AND status IN ('todo', 'doing')",
            locks=queueing_locks,
        )
        return {row["queueing_lock"] for row in rows}
