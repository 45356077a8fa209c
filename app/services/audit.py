"""Reading the audit trail (the API's pages and `tasksgodzilla audit export`)."""

from __future__ import annotations

from app.domain.records import AuditEvent
from app.services.context import Services
from app.store import audit
from app.store.events import START, Position


async def audit_page(
    svc: Services, after: Position | None, where: audit.AuditFilter, *, limit: int
) -> tuple[list[AuditEvent], Position | None]:
    """Up to `limit` actions after `after` (None: from the start) and where the next page resumes
    (None when this one is empty)."""
    async with svc.database.read() as conn:
        placed = await audit.read_after(conn, after or START, where, limit=limit)
    return [row for _, row in placed], (placed[-1][0] if placed else None)
