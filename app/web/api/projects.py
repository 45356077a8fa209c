"""Projects: register, read, list, change, delete; their branches; their setup questions."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.records import Project, ProjectStatus
from app.domain.scopes import Level, tenant
from app.errors import ConflictError, InvalidInputError
from app.services import project_actions
from app.services import projects as project_service
from app.services.workspace import existing_repository
from app.store import projects as store
from app.web import views
from app.web.api.common import if_match, others_unnamed, services
from app.web.api.models import Answers, BranchDelete, Page, ProjectCreate, ProjectPageQuery, ProjectPatch
from app.web.api.registry import Api, respond
from app.web.idempotency import claim_of
from app.web.scope import resolved

api = Api()


class ProjectToken(BaseModel):
    project_id: int
    token: str = Field(description="Shown once; send it as X-Project-Token.")


@api.route(
    "POST",
    "/projects",
    summary="Register a project in the caller's organisation (the operator's: the default one)",
    tag="projects",
    scope=tenant(Level.ORGANISATION, narrows=True),
    body=ProjectCreate,
    headers=("Idempotency-Key",),
    response=Project,
    status=201,
    errors=(409, 422),
)
async def create_project(request: web.Request, body: ProjectCreate) -> Project:
    caller = resolved(request).narrowing()
    with others_unnamed(request):
        return await project_service.register_project(
            services(request),
            idempotency=claim_of(request),
            organisation_id=caller.get("organisation_id"),
            **body.model_dump(exclude_none=True),
        )


@api.route(
    "GET",
    "/projects",
    summary="List the projects the caller reaches, newest first (`organisation_id`: that one's only)",
    tag="projects",
    scope=tenant(narrows=True),
    query=ProjectPageQuery,
    response=Page[Project],
)
async def list_projects(request: web.Request, query: ProjectPageQuery) -> dict:
    checked = resolved(request)
    within = checked.narrowing()
    if "organisation_id" in checked.ids:
        within["organisation_id"] = checked.ids["organisation_id"]
    return await views.project_list(services(request), query, **within)


@api.route(
    "GET",
    "/projects/{project_id}",
    summary="One project",
    tag="projects",
    scope=tenant(),
    response=Project,
    errors=(404,),
)
async def get_project(request: web.Request, project_id: int) -> Project:
    return await views.project(services(request), project_id)


@api.route(
    "PATCH",
    "/projects/{project_id}",
    summary="Change a project (If-Match: its ETag); a new base branch answers with a `Link` to re-run setup",
    tag="projects",
    scope=tenant(),
    body=ProjectPatch,
    headers=("If-Match",),
    response=Project,
    errors=(404, 409, 422),
)
async def patch_project(request: web.Request, project_id: int, body: ProjectPatch) -> web.Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    changed = await project_service.change_project(
        services(request), project_id, changes, expected_version=if_match(request)
    )
    # The clone was checked against the old branch: the setup should run again to check the new one.
    link = f'</projects/{project_id}/actions/setup>; rel="setup"'
    return respond(changed, headers={"Link": link} if "base_branch" in changes else {})


@api.route(
    "POST",
    "/projects/{project_id}/actions/setup",
    summary="Run the project's setup again (clone or find, check, ask); 409 while one is queued or running",
    tag="projects",
    scope=tenant(),
    response=Project,
    status=202,
    errors=(404, 409),
)
async def rerun_setup(request: web.Request, project_id: int) -> Project:
    svc = services(request)
    project = await views.project(svc, project_id)
    if project.status is ProjectStatus.SETTING_UP:
        raise ConflictError(f"project {project.name} is being set up already", status=str(project.status))
    if not await project_service.request_setup(svc, project_id):
        raise ConflictError(f"the setup of project {project.name} is queued already", status="queued")
    return await views.project(svc, project_id)


@api.route(
    "DELETE",
    "/projects/{project_id}",
    summary="Delete a project and its runs and events (its audit trail stays: GET /audit)",
    tag="projects",
    scope=tenant(),
    status=204,
    errors=(404,),
)
async def delete_project(request: web.Request, project_id: int) -> web.Response:
    await project_actions.delete_project(services(request), project_id)
    return web.Response(status=204)


@api.route(
    "GET",
    "/projects/{project_id}/branches",
    summary="Remote branches of the project",
    tag="projects",
    scope=tenant(),
    errors=(404, 409, 502),
)
async def list_branches(request: web.Request, project_id: int) -> dict:
    svc = services(request)
    async with svc.database.read() as conn:
        project = await store.get(conn, project_id)
    return {"branches": await existing_repository(svc, project).list_remote_branches()}


@api.route(
    "DELETE",
    "/projects/{project_id}/branches/{branch:.+}",
    summary="Delete a remote branch",
    tag="projects",
    scope=tenant(),
    body=BranchDelete,
    errors=(404, 409, 422, 502),
)
async def delete_branch(request: web.Request, project_id: int, branch: str, body: BranchDelete) -> dict:
    if body.confirm != branch:
        raise InvalidInputError("confirm must repeat the branch name", field="confirm")
    return {"deleted": await project_actions.delete_branch(services(request), project_id, branch)}


@api.route(
    "POST",
    "/projects/{project_id}/clarifications",
    summary="Answer setup questions",
    tag="projects",
    scope=tenant(),
    body=Answers,
    response=Project,
    errors=(404, 422),
)
async def answer(request: web.Request, project_id: int, body: Answers) -> Project:
    return await project_service.answer_clarifications(services(request), project_id, body.answers)


@api.route(
    "POST",
    "/projects/{project_id}/token",
    summary="Issue the project's own API token (X-Project-Token); replaces any previous one",
    tag="projects",
    scope=tenant(Level.ORGANISATION),
    response=ProjectToken,
    status=201,
    errors=(403, 404),
)
async def issue_token(request: web.Request, project_id: int) -> ProjectToken:
    token = await project_actions.issue_token(services(request), project_id)
    return ProjectToken(project_id=project_id, token=token)
