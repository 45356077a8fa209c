"""Webhook deliveries: recorded once per (provider, delivery id), then applied once by a worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import DeliveryOutcome, Provider, WebhookDelivery
from app.store.rows import fetch_all, fetch_one, page_size, to_record
from app.store.tables import webhook_deliveries as deliveries


async def record(
    conn: AsyncConnection,
    *,
    provider: Provider,
    delivery_id: str,
    event: str,
    signal: dict[str, Any],
    outcome: DeliveryOutcome | None = None,
    detail: str = "",
) -> int | None:
    """Insert a delivery; its id, or None when this (provider, delivery id) was recorded already.

    The unique constraint decides between concurrent copies: exactly one insert returns a row.
    """
    statement = (
        insert(deliveries)
        .values(
            provider=provider.value,
            delivery_id=delivery_id,
            event=event,
            signal=signal,
            outcome=outcome.value if outcome else None,
            detail=detail,
            applied_at=func.now() if outcome else None,
        )
        .on_conflict_do_nothing(index_elements=["provider", "delivery_id"])
        .returning(deliveries.c.id)
    )
    return await conn.scalar(statement)


async def get(conn: AsyncConnection, row_id: int) -> WebhookDelivery:
    query = select(deliveries).where(deliveries.c.id == row_id)
    return await fetch_one(conn, query, WebhookDelivery, what=f"webhook delivery {row_id}")


async def find(conn: AsyncConnection, provider: Provider, delivery_id: str) -> WebhookDelivery | None:
    query = select(deliveries).where(
        deliveries.c.provider == provider.value, deliveries.c.delivery_id == delivery_id
    )
    row = (await conn.execute(query)).first()
    return to_record(WebhookDelivery, row) if row is not None else None


async def claim_unapplied(conn: AsyncConnection, row_id: int) -> WebhookDelivery | None:
    """The delivery, locked until the transaction ends, if nobody has applied it yet."""
    query = (
        select(deliveries).where(deliveries.c.id == row_id, deliveries.c.outcome.is_(None)).with_for_update()
    )
    row = (await conn.execute(query)).first()
    return to_record(WebhookDelivery, row) if row is not None else None


async def finish(
    conn: AsyncConnection,
    row_id: int,
    outcome: DeliveryOutcome,
    detail: str,
    *,
    project_id: int | None = None,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
) -> None:
    """Say what became of a delivery (and what it was about, when that is known)."""
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == row_id)
        .values(
            outcome=outcome.value,
            detail=detail[:2000],
            project_id=project_id,
            protocol_run_id=protocol_run_id,
            step_run_id=step_run_id,
            applied_at=func.now(),
        )
    )


async def list_for_run(
    conn: AsyncConnection, protocol_run_id: int, *, limit: int = 100
) -> list[WebhookDelivery]:
    """The deliveries applied to a run, oldest first."""
    query = (
        select(deliveries)
        .where(deliveries.c.protocol_run_id == protocol_run_id)
        .order_by(deliveries.c.id)
        .limit(page_size(limit))
    )
    return await fetch_all(conn, query, WebhookDelivery)


async def forget_before(conn: AsyncConnection, cutoff: datetime) -> int:
    """Drop deliveries received before `cutoff` (a forge redelivers for days, not months)."""
    result = await conn.execute(delete(deliveries).where(deliveries.c.received_at < cutoff))
    return result.rowcount or 0
