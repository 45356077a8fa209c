"""After every change of state: queue what the protocol run needs next, in the same transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import awaits_merge
from app.domain.workflow import next_work
from app.services.context import Services
from app.store import jobs, protocols, steps


async def defer_next_work(svc: Services, conn: AsyncConnection, protocol_run_id: int) -> int:
    """Queue the next job of a running protocol inside the caller's transaction, so the job commits
    with the change that needs it; how many were queued (0 when it waits or one is queued already)."""
    run = await protocols.get(conn, protocol_run_id)
    plan = await steps.list_for_protocol(conn, protocol_run_id)
    queued = 0
    for work in next_work(
        run.status,
        plan,
        auto_qa=svc.settings.auto_qa_after_exec,
        qa_on_ci=svc.settings.auto_qa_on_ci,
        awaiting_merge=awaits_merge(run),
    ):
        queued += await jobs.defer(conn, work)
    return queued
