"""Console: the "Policy findings" panel of protocol and step pages, grouped by scope."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.findings import SCOPES, Finding
from app.services.findings import FINDING_EVENT
from app.store import events

SHOWN = 200  # newest first; a run with more has bigger problems than the panel can show


async def findings_by_scope(
    conn: AsyncConnection, *, protocol_run_id: int | None = None, step_run_id: int | None = None
) -> list[tuple[str, list[Finding]]]:
    """The subject's findings, newest first, in scope order (onboarding, planning, execution, QA);
    scopes with none left out."""
    recorded = await events.recent(
        conn, protocol_run_id=protocol_run_id, step_run_id=step_run_id, type_prefix=FINDING_EVENT, limit=SHOWN
    )
    found = [Finding.model_validate(e.payload["finding"]) for e in recorded if e.event_type == FINDING_EVENT]
    return [
        (scope, [f for f in found if f.scope == scope])
        for scope in SCOPES
        if any(f.scope == scope for f in found)
    ]
