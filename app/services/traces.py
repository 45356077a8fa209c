"""Which protocol run's trace a piece of work joins (app/tracing.py says how traces are linked)."""

from __future__ import annotations

from app.services.context import Services
from app.store import protocols
from app.tracing import RunKey


async def run_key(
    svc: Services, *, protocol_run_id: int | None = None, step_run_id: int | None = None
) -> RunKey | None:
    """The trace key of a run (or of a step's run); None when tracing is off (no query then) or
    there is no such run."""
    if not svc.tracing.enabled or (protocol_run_id is None and step_run_id is None):
        return None
    async with svc.database.read() as conn:
        found = await protocols.identity(conn, protocol_run_id=protocol_run_id, step_run_id=step_run_id)
    return None if found is None else RunKey(*found)
