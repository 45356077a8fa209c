"""Organisations: create and list them, issue their token, register projects in one."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.records import Organisation, Project
from app.domain.scopes import SERVICE, Level, tenant
from app.domain.tokens import new_organisation_token
from app.domain.visible import VisibleLine
from app.services import organisations as organisation_service
from app.services import projects as project_service
from app.store import organisations as store
from app.web.api.common import others_unnamed, services
from app.web.api.models import Page, PageQuery, ProjectCreate, Strict, page_of
from app.web.api.registry import Api
from app.web.idempotency import claim_of
from app.web.scope import resolved

api = Api()


class OrganisationCreate(Strict):
    name: VisibleLine = Field(min_length=1, max_length=100)
    slug: str | None = Field(
        None,
        max_length=48,
        description="How the command line names it (a-z, 0-9, '-'); made from the name when left out.",
    )


class OrganisationToken(BaseModel):
    organisation_id: int
    token: str = Field(
        description="Shown once; send it as X-Organisation-Token, or sign in to the console with it."
    )


@api.route(
    "POST",
    "/organisations",
    summary="Create an organisation (the operator only)",
    tag="organisations",
    scope=SERVICE,
    body=OrganisationCreate,
    response=Organisation,
    status=201,
    errors=(409, 422),
)
async def create_organisation(request: web.Request, body: OrganisationCreate) -> Organisation:
    return await organisation_service.create_organisation(services(request), name=body.name, slug=body.slug)


@api.route(
    "GET",
    "/organisations",
    summary="The organisations the caller reaches (an organisation token: its own), newest first",
    tag="organisations",
    scope=tenant(Level.ORGANISATION, narrows=True),
    query=PageQuery,
    response=Page[Organisation],
)
async def list_organisations(request: web.Request, query: PageQuery) -> dict:
    only = resolved(request).narrowing().get("organisation_id")
    async with services(request).database.read() as conn:
        items = await store.list_page(conn, before_id=query.position(), limit=query.limit, only=only)
    return page_of(items, query.limit)


@api.route(
    "GET",
    "/organisations/{organisation_id}",
    summary="One organisation",
    tag="organisations",
    scope=tenant(Level.ORGANISATION),
    response=Organisation,
    errors=(404,),
)
async def get_organisation(request: web.Request, organisation_id: int) -> Organisation:
    async with services(request).database.read() as conn:
        return await store.get(conn, organisation_id)


@api.route(
    "POST",
    "/organisations/{organisation_id}/token",
    summary="Issue the organisation's token (X-Organisation-Token); replaces any previous one",
    tag="organisations",
    scope=SERVICE,
    response=OrganisationToken,
    status=201,
    errors=(404,),
)
async def issue_token(request: web.Request, organisation_id: int) -> OrganisationToken:
    token, digest = new_organisation_token()
    await organisation_service.replace_token(services(request), organisation_id, digest)
    return OrganisationToken(organisation_id=organisation_id, token=token)


@api.route(
    "POST",
    "/organisations/{organisation_id}/projects",
    summary="Register a project in this organisation and queue its setup",
    tag="organisations",
    scope=tenant(Level.ORGANISATION),
    body=ProjectCreate,
    headers=("Idempotency-Key",),
    response=Project,
    status=201,
    errors=(404, 409, 422),
)
async def create_project(request: web.Request, organisation_id: int, body: ProjectCreate) -> Project:
    async with services(request).database.read() as conn:
        await store.get(conn, organisation_id)  # a 404 for the operator naming none
    with others_unnamed(request):
        return await project_service.register_project(
            services(request),
            idempotency=claim_of(request),
            organisation_id=organisation_id,
            **body.model_dump(exclude_none=True),
        )
