"""Deliveries of the generic trigger webhook: one per (project, delivery id), with the run it made."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.intake_tables import trigger_deliveries as deliveries


async def claim(conn: AsyncConnection, project_id: int, delivery_id: str) -> bool:
    """True for the one caller that records this delivery first (the primary key decides)."""
    statement = (
        insert(deliveries)
        .values(project_id=project_id, delivery_id=delivery_id)
        .on_conflict_do_nothing(index_elements=["project_id", "delivery_id"])
        .returning(deliveries.c.delivery_id)
    )
    return (await conn.scalar(statement)) is not None


async def run_of(conn: AsyncConnection, project_id: int, delivery_id: str) -> int | None:
    query = select(deliveries.c.protocol_run_id).where(
        deliveries.c.project_id == project_id, deliveries.c.delivery_id == delivery_id
    )
    return await conn.scalar(query)


async def settle(conn: AsyncConnection, project_id: int, delivery_id: str, run_id: int) -> None:
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.project_id == project_id, deliveries.c.delivery_id == delivery_id)
        .values(protocol_run_id=run_id)
    )
