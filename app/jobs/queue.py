"""The services' job queue, on Procrastinate: abort jobs and see what is pending (deferring is SQL in the
caller's transaction: app/store/jobs.py)."""

from __future__ import annotations

from typing import Any

import procrastinate


class ProcrastinateQueue:
    """Implements app.services.context.JobQueue."""

    def __init__(self, app: procrastinate.App) -> None:
        self.app = app

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
