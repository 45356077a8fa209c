"""Budget raises: an operator's `budget.raised` events, summed per budget they lift."""

from __future__ import annotations

from sqlalchemy import Float, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import events

RAISED = "budget.raised"


async def raised(
    conn: AsyncConnection,
    project_id: int,
    scope: str,
    *,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
    month: str | None = None,
) -> float:
    """The sum of the raises of one budget: a project's `scope`, of one run, one step or one month."""
    amount = cast(events.c.payload["amount"].astext, Float)
    query = select(func.coalesce(func.sum(amount), 0.0)).where(
        events.c.project_id == project_id,
        events.c.event_type == RAISED,
        events.c.payload["scope"].astext == scope,
    )
    if protocol_run_id is not None:
        query = query.where(events.c.protocol_run_id == protocol_run_id)
    if step_run_id is not None:
        query = query.where(events.c.step_run_id == step_run_id)
    if month is not None:
        query = query.where(events.c.payload["month"].astext == month)
    return float(await conn.scalar(query) or 0.0)
