"""What agents used: a protocol run's tokens and cost per stage, a project's per day, month, engine or
model. Runs whose model has no price are counted apart (`unknown_cost_runs`), never as free."""

from __future__ import annotations

from datetime import date

from aiohttp import web
from pydantic import Field

from app.domain.scopes import tenant
from app.domain.totals import ProjectUsage, ProtocolUsage, UsageGroup
from app.services import usage
from app.web.api.common import services
from app.web.api.models import Strict
from app.web.api.registry import Api

api = Api()


class UsageQuery(Strict):
    group: UsageGroup = Field(
        UsageGroup.DAY, description="Split by `day`, `month` (UTC), `engine` or `model`"
    )
    since: date | None = Field(None, description="First day counted (UTC, YYYY-MM-DD)")
    until: date | None = Field(None, description="Last day counted (UTC, YYYY-MM-DD)")


@api.route(
    "GET",
    "/protocols/{protocol_id}/usage",
    summary="A protocol run's tokens and cost: planning, execution and QA together and per stage",
    tag="usage",
    scope=tenant(),
    response=ProtocolUsage,
    errors=(404,),
)
async def protocol_usage(request: web.Request, protocol_id: int) -> ProtocolUsage:
    return await usage.for_protocol(services(request), protocol_id)


@api.route(
    "GET",
    "/projects/{project_id}/usage",
    summary="A project's tokens and cost per day, month, engine or model",
    tag="usage",
    scope=tenant(),
    query=UsageQuery,
    response=ProjectUsage,
    errors=(404, 422),
)
async def project_usage(request: web.Request, project_id: int, query: UsageQuery) -> ProjectUsage:
    return await usage.for_project(
        services(request), project_id, query.group, since=query.since, until=query.until
    )
