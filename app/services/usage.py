"""Reading what agents used: a protocol run's totals per stage, a project's per day, month, engine or
model. Shared by the API, the console and the command line, so the three never disagree."""

from __future__ import annotations

from datetime import date

from app.domain.totals import ProjectUsage, ProtocolUsage, UsageGroup, project_usage, protocol_usage
from app.errors import InvalidInputError
from app.services.context import Services
from app.store import projects, protocols
from app.store import usage as usage_store


async def for_protocol(svc: Services, protocol_id: int) -> ProtocolUsage:
    """A protocol run's tokens and cost, in total and per stage (NotFoundError for an unknown run)."""
    async with svc.database.read() as conn:
        await protocols.get(conn, protocol_id)
        by_stage = await usage_store.by_stage(conn, protocol_id)
        return protocol_usage(protocol_id, by_stage, await usage_store.by_step(conn, protocol_id))


async def for_project(
    svc: Services,
    project_id: int,
    group: UsageGroup,
    *,
    since: date | None = None,
    until: date | None = None,
) -> ProjectUsage:
    """A project's tokens and cost per day, month, engine or model, between `since` and `until`."""
    if since is not None and until is not None and since > until:
        raise InvalidInputError("since must not be after until", field="since")
    async with svc.database.read() as conn:
        await projects.get(conn, project_id)
        rows = await usage_store.for_project(conn, project_id, group, since=since, until=until)
    return project_usage(project_id, group, since, until, rows)
