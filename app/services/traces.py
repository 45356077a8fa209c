"""Which protocol run's trace a piece of work joins (app/tracing.py says how traces are linked)."""

from __future__ import annotations

from app.logs import get_logger
from app.services.context import Services
from app.store import protocols
from app.tracing import RunKey

log = get_logger(__name__)


async def run_key(
    svc: Services, *, protocol_run_id: int | None = None, step_run_id: int | None = None
) -> RunKey | None:
    """The trace key of a run (or of a step's run); None when tracing is off (no query then), when
    there is no such run, or when it cannot be read: a span outside its trace never stops the work."""
    if not svc.tracing.enabled or (protocol_run_id is None and step_run_id is None):
        return None
    try:
        async with svc.database.read() as conn:
            found = await protocols.identity(conn, protocol_run_id=protocol_run_id, step_run_id=step_run_id)
    except Exception as exc:  # the database away, an id out of range: the work will say so itself
        log.warning("could not find the trace of a run", error=repr(exc))
        return None
    return None if found is None else RunKey(found.id, found.created_at)
