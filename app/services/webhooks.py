"""Webhook deliveries: received (recorded once, queued) and applied (once, by a worker).

Receiving does the least that is safe before answering the forge: record the delivery under its
unique id and queue the job that applies it, in one transaction: either both are stored or neither
(the forge then gets a 5xx and its retry is not mistaken for a duplicate). A delivery that can change
nothing (an ignored signal) is recorded as such and not queued.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from app.domain.ci import SIGNAL, AnySignal, DeliveryOutcome, IgnoredSignal, Provider, ReviewSignal
from app.domain.workflow import webhook_work
from app.errors import ConflictError
from app.logs import get_logger
from app.services.ci import Applied, apply_signal
from app.services.context import Services
from app.services.delivery_facts import forge_facts
from app.services.progress import defer_next_work
from app.services.reviews import apply_review
from app.services.traces import run_key
from app.store import deliveries, jobs

log = get_logger(__name__)
RACE_RETRIES = 5


class Receipt(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Received:
    id: int
    receipt: Receipt
    detail: str = ""


async def receive(
    svc: Services,
    *,
    provider: Provider,
    delivery_id: str,
    event: str,
    signal: AnySignal,
) -> Received:
    """Record a verified delivery once and queue its application."""
    ignored = isinstance(signal, IgnoredSignal)
    detail = signal.reason if isinstance(signal, IgnoredSignal) else ""
    async with svc.database.transaction() as conn:
        row_id = await deliveries.record(
            conn,
            provider=provider,
            delivery_id=delivery_id,
            event=event,
            signal=signal.model_dump(mode="json"),
            outcome=DeliveryOutcome.IGNORED if ignored else None,
            detail=detail,
        )
        existing = None if row_id is not None else await deliveries.find(conn, provider, delivery_id)
        if existing is not None:
            if existing.outcome is None and not ignored:
                # Its first copy is not applied yet: make sure a job is queued (a no-op when one waits).
                await jobs.defer(conn, webhook_work(existing.id, _scope(signal)))
            return Received(existing.id, Receipt.DUPLICATE, "this delivery was received before")
        assert row_id is not None
        if ignored:
            return Received(row_id, Receipt.IGNORED, detail)
        await jobs.defer(conn, webhook_work(row_id, _scope(signal)))
    return Received(row_id, Receipt.QUEUED)


def _scope(signal: AnySignal) -> str:
    return f"{signal.provider}:{signal.repository or ''}"


async def apply_delivery(svc: Services, delivery_id: int) -> DeliveryOutcome | None:
    """Apply a recorded delivery, once; None when it was applied already. Traced as a span of the
    run it applied to (known only once applied)."""
    started_ns = time.time_ns()
    applied: Applied | None = None
    async with svc.database.read() as conn:
        recorded = await deliveries.get(conn, delivery_id)
    if recorded.outcome is not None:
        return None
    # The forge is asked before the transaction: a slow forge never holds the run's rows locked.
    facts = await forge_facts(svc, SIGNAL.validate_python(recorded.signal))
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            async with svc.database.transaction() as conn:
                delivery = await deliveries.claim_unapplied(conn, delivery_id)
                if delivery is None:
                    return None
                signal = SIGNAL.validate_python(delivery.signal)
                if isinstance(signal, ReviewSignal):
                    applied = await apply_review(conn, svc, signal, delivery, facts)
                else:
                    applied = await apply_signal(conn, svc, signal, delivery, facts)
                await deliveries.finish(
                    conn,
                    delivery.id,
                    applied.outcome,
                    applied.detail,
                    project_id=applied.project_id,
                    protocol_run_id=applied.protocol_run_id,
                    step_run_id=applied.step_run_id,
                )
                if applied.next_work and applied.protocol_run_id is not None:
                    await defer_next_work(svc, conn, applied.protocol_run_id)
            break
        except ConflictError as lost:
            # A job moved the step or run meanwhile (QA finished, an operator retried): decide again.
            if attempt == RACE_RETRIES:
                raise
            log.info("webhook delivery lost a race; applying it again", error=lost.message)
    assert applied is not None
    svc.tracing.record(
        "webhook apply",
        started_ns=started_ns,
        run=await run_key(svc, protocol_run_id=applied.protocol_run_id),
        attributes={
            "tasksgodzilla.delivery_id": delivery_id,
            "tasksgodzilla.outcome": str(applied.outcome),
            "tasksgodzilla.step_run_id": applied.step_run_id,
        },
    )
    log.info(
        "webhook delivery applied", delivery=delivery_id, outcome=str(applied.outcome), detail=applied.detail
    )
    return applied.outcome


async def fail_delivery(svc: Services, delivery_id: int, reason: str) -> None:
    """Applying gave up for good: say so on the delivery (its forge will not send it again)."""
    async with svc.database.transaction() as conn:
        if await deliveries.claim_unapplied(conn, delivery_id) is not None:
            await deliveries.finish(conn, delivery_id, DeliveryOutcome.FAILED, reason)
