"""Projects: register, read, list, change, delete; their branches; their setup questions."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.records import Project
from app.errors import InvalidInputError, PermissionDeniedError
from app.services import projects as project_service
from app.services.workspace import existing_repository
from app.store import projects as store
from app.web import views
from app.web.api.common import if_match, services
from app.web.api.models import Answers, BranchDelete, Page, PageQuery, ProjectCreate, ProjectPatch
from app.web.api.registry import Api
from app.web.auth import PROJECT_TOKEN_HEADER, new_project_token
from app.web.idempotency import claim_of

api = Api()


class ProjectToken(BaseModel):
    project_id: int
    token: str = Field(description="Shown once; send it as X-Project-Token.")


@api.route(
    "POST",
    "/projects",
    summary="Register a project and queue its setup",
    tag="projects",
    body=ProjectCreate,
    headers=("Idempotency-Key",),
    response=Project,
    status=201,
    errors=(409, 422),
)
async def create_project(request: web.Request, body: ProjectCreate) -> Project:
    return await project_service.register_project(
        services(request), idempotency=claim_of(request), **body.model_dump(exclude_none=True)
    )


@api.route(
    "GET",
    "/projects",
    summary="List projects, newest first",
    tag="projects",
    query=PageQuery,
    response=Page[Project],
)
async def list_projects(request: web.Request, query: PageQuery) -> dict:
    return await views.project_list(services(request), query)


@api.route(
    "GET", "/projects/{project_id}", summary="One project", tag="projects", response=Project, errors=(404,)
)
async def get_project(request: web.Request, project_id: int) -> Project:
    return await views.project(services(request), project_id)


@api.route(
    "PATCH",
    "/projects/{project_id}",
    summary="Change a project (If-Match: its ETag)",
    tag="projects",
    body=ProjectPatch,
    headers=("If-Match",),
    response=Project,
    errors=(404, 409, 422),
)
async def patch_project(request: web.Request, project_id: int, body: ProjectPatch) -> Project:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return await project_service.change_project(
        services(request), project_id, changes, expected_version=if_match(request)
    )


@api.route(
    "DELETE",
    "/projects/{project_id}",
    summary="Delete a project and its history",
    tag="projects",
    status=204,
    errors=(404,),
)
async def delete_project(request: web.Request, project_id: int) -> web.Response:
    async with services(request).database.transaction() as conn:
        await store.delete_project(conn, project_id)
    return web.Response(status=204)


@api.route(
    "GET",
    "/projects/{project_id}/branches",
    summary="Remote branches of the project",
    tag="projects",
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
    body=BranchDelete,
    errors=(404, 409, 422, 502),
)
async def delete_branch(request: web.Request, project_id: int, branch: str, body: BranchDelete) -> dict:
    if body.confirm != branch:
        raise InvalidInputError("confirm must repeat the branch name", field="confirm")
    svc = services(request)
    async with svc.database.transaction() as conn:
        project = await store.get(conn, project_id)
    return {"deleted": await existing_repository(svc, project).delete_remote_branch(branch)}


@api.route(
    "POST",
    "/projects/{project_id}/clarifications",
    summary="Answer setup questions",
    tag="projects",
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
    response=ProjectToken,
    status=201,
    errors=(403, 404),
)
async def issue_token(request: web.Request, project_id: int) -> ProjectToken:
    if request.headers.get(PROJECT_TOKEN_HEADER):
        raise PermissionDeniedError("a project token cannot issue tokens; use the service token")
    token, digest = new_project_token()
    async with services(request).database.transaction() as conn:
        await store.set_token_hash(conn, project_id, digest)
    return ProjectToken(project_id=project_id, token=token)
