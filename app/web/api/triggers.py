"""A project's triggers: cron schedules (list, add, delete), the trigger webhook's secret, and the
issues it took in."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field, StrictBool

from app.domain.intake import IntakeIssue
from app.domain.schedules import Schedule
from app.domain.scopes import tenant
from app.errors import InvalidInputError
from app.services import intake, schedules, triggers
from app.web.api.common import services
from app.web.api.models import Page, Strict
from app.web.api.registry import Api
from app.web.trigger_hook import SIGNATURE_HEADER, trigger_path

api = Api()


class ScheduleCreate(Strict):
    cron: str = Field(
        min_length=1, max_length=100, description="Five cron fields, UTC: minute hour day month weekday"
    )
    title: str = Field(min_length=1, max_length=200, description="The title of each run it creates")
    description: str = Field("", max_length=20_000, description="The description of each run it creates")
    enabled: StrictBool = True


class TriggerSecret(BaseModel):
    secret: str = Field(description="Shown once: sign each body with HMAC-SHA256 under it")
    header: str
    path: str


@api.route(
    "GET",
    "/projects/{project_id}/intake/issues",
    summary="The forge issues a project took in: their last known state and the run each became",
    tag="triggers",
    scope=tenant(),
    response=Page[IntakeIssue],
    errors=(404,),
)
async def list_intake_issues(request: web.Request, project_id: int) -> dict:
    return {"items": await intake.issues_of(services(request), project_id), "next_cursor": None}


@api.route(
    "GET",
    "/projects/{project_id}/schedules",
    summary="A project's cron schedules",
    tag="triggers",
    scope=tenant(),
    response=Page[Schedule],
    errors=(404,),
)
async def list_schedules(request: web.Request, project_id: int) -> dict:
    return {"items": await schedules.list_schedules(services(request), project_id), "next_cursor": None}


@api.route(
    "POST",
    "/projects/{project_id}/schedules",
    summary="Add a cron schedule: each due time creates (and starts) one run from its title and description",
    tag="triggers",
    scope=tenant(),
    body=ScheduleCreate,
    response=Schedule,
    status=201,
    errors=(404, 409, 422),
)
async def add_schedule(request: web.Request, project_id: int, body: ScheduleCreate) -> Schedule:
    return await schedules.add_schedule(
        services(request),
        project_id,
        cron=body.cron,
        title=body.title,
        description=body.description,
        enabled=body.enabled,
    )


@api.route(
    "DELETE",
    "/projects/{project_id}/schedules/{schedule}",
    summary="Delete a cron schedule (the runs it created stay)",
    tag="triggers",
    scope=tenant(),
    status=204,
    errors=(404, 422),
)
async def delete_schedule(request: web.Request, project_id: int, schedule: str) -> web.Response:
    # Named `schedule`, not `schedule_id`: an `_id` parameter must be a resource the scope check
    # knows; a schedule is found within the project the path names (which is checked).
    if not schedule.isascii() or not schedule.isdigit() or len(schedule) > 18:
        raise InvalidInputError("schedule must be a schedule's id (a whole number)", field="schedule")
    await schedules.delete_schedule(services(request), project_id, int(schedule))
    return web.Response(status=204)


@api.route(
    "POST",
    "/projects/{project_id}/triggers/webhook/secret",
    summary="Make (or replace) the secret that signs the project's trigger webhook; shown once",
    tag="triggers",
    scope=tenant(),
    response=TriggerSecret,
    status=201,
    errors=(404,),
)
async def new_trigger_secret(request: web.Request, project_id: int) -> TriggerSecret:
    secret = await triggers.new_secret(services(request), project_id)
    return TriggerSecret(secret=secret, header=SIGNATURE_HEADER, path=trigger_path(project_id))
