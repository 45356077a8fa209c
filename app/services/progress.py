"""After every change of state: queue what the protocol run needs next, if anything."""

from __future__ import annotations

from app.domain.ci import awaits_merge
from app.domain.workflow import next_work
from app.services.context import Services
from app.store import protocols, steps


async def defer_next_work(svc: Services, protocol_run_id: int) -> int:
    """Queue the next job of a running protocol; how many were queued (0 when it waits or already queued)."""
    async with svc.database.transaction() as conn:
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
        queued += await svc.queue.defer(work)
    return queued
