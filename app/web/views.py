"""Reads shared by the JSON API and the web console: one query per view, so the two never disagree.

Each returns what the API serialises (a pydantic record, or a page dict of them); the console
renders the same values into its templates.
"""

from __future__ import annotations

from app.domain.records import Project, ProtocolRun, StepRun
from app.services.context import Services
from app.store import projects, protocols, steps
from app.web.api.models import PageQuery, ProtocolPageQuery, page_of


async def project_list(svc: Services, query: PageQuery, **within: int) -> dict:
    """A page of projects, newest first (`Page[Project]`); `within` keeps those of an organisation
    (`organisation_id`) or one project (`project_id`): a tenant's reach."""
    async with svc.database.read() as conn:
        items = await projects.list_page(conn, before_id=query.position(), limit=query.limit, **within)
    return page_of(items, query.limit)


async def protocol_list(svc: Services, project_id: int, query: ProtocolPageQuery) -> dict:
    """A page of a project's protocol runs, newest first (`Page[ProtocolRun]`)."""
    async with svc.database.read() as conn:
        items = await protocols.list_for_project(
            conn,
            project_id,
            statuses=query.status,
            before_id=query.position(),
            limit=query.limit,
            search=query.q or None,
        )
    return page_of(items, query.limit)


async def project(svc: Services, project_id: int) -> Project:
    async with svc.database.read() as conn:
        return await projects.get(conn, project_id)


async def protocol_run(svc: Services, protocol_id: int) -> ProtocolRun:
    async with svc.database.read() as conn:
        return await protocols.get(conn, protocol_id)


async def step_list(svc: Services, protocol_id: int) -> list[StepRun]:
    """A run's steps in plan order (NotFoundError when the run does not exist)."""
    async with svc.database.read() as conn:
        await protocols.get(conn, protocol_id)
        return await steps.list_for_protocol(conn, protocol_id)


async def step(svc: Services, step_id: int) -> StepRun:
    async with svc.database.read() as conn:
        return await steps.get(conn, step_id)
