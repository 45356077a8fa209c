"""After every change of state: queue what the protocol run needs next, in the same transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import auto_merge_blocker, awaits_merge
from app.domain.records import ProtocolRun
from app.domain.workflow import auto_merge_work, next_work
from app.services.context import Services
from app.services.policy import run_policy
from app.store import events, jobs, protocols, steps

# The events of one auto-merge attempt; one attempt per head of a run.
AUTO_MERGE_EVENTS = ["pr.auto_merge_requested", "pr.auto_merge_refused"]


async def defer_next_work(
    svc: Services, conn: AsyncConnection, protocol_run_id: int, *, run: ProtocolRun | None = None
) -> int:
    """Queue the next job of a running protocol inside the caller's transaction, so the job commits
    with the change that needs it; how many were queued (0 when it waits or one is queued already).
    `run`: the run as read or written in this transaction already (else it is read)."""
    if run is None or run.id != protocol_run_id:
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


async def auto_merge_attempted(conn: AsyncConnection, protocol_run_id: int, sha: str) -> bool:
    """An auto-merge of the run's PR/MR at `sha` was requested or refused already."""
    done = await events.list_page(
        conn, protocol_run_id=protocol_run_id, event_types=AUTO_MERGE_EVENTS, limit=500
    )
    return any(event.payload.get("sha") == sha for event in done)


async def defer_auto_merge(svc: Services, conn: AsyncConnection, protocol_run_id: int) -> bool:
    """Queue the auto-merge job, in the caller's transaction, when the run's policy says `auto_merge`,
    its PR/MR is safe to merge now (auto_merge_blocker) and no merge was tried at its head yet.
    Called where that can become true: the PR/MR published, CI passed."""
    run = await protocols.get(conn, protocol_run_id)
    if auto_merge_blocker(run, await steps.list_for_protocol(conn, run.id)) is not None:
        return False
    if not (await run_policy(conn, run.id)).policy.get("auto_merge"):
        return False
    if await auto_merge_attempted(conn, run.id, run.head_sha or ""):
        return False
    return await jobs.defer(conn, auto_merge_work(run.id))
