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

    async def abort(self, lock: str) -> int:
        """Cancel waiting jobs holding `lock` and ask running ones to stop (their task is cancelled)."""
        manager = self.app.job_manager
        asked = 0
        for status in ("todo", "doing"):
            for job in await manager.list_jobs_async(lock=lock, status=status):
                if job.id is not None:
                    await manager.cancel_job_by_id_async(job.id, abort=True)
                    asked += 1
        return asked

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
