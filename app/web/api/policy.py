"""Policy packs (a service-wide catalogue) and each project's policy: its pack, overrides, modes, and
the effective policy they make."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.policy import pack_schema
from app.domain.policy_file import PATHS
from app.domain.records import PolicyPack, Project
from app.domain.scopes import CATALOGUE, SERVICE, tenant
from app.domain.visible import VisibleLine
from app.services import policy as policy_service
from app.store import projects as project_store
from app.web.api.common import services
from app.web.api.models import Strict
from app.web.api.registry import Api

api = Api()
PackKey = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9-]*$")
PackVersionText = Field(min_length=1, max_length=20, pattern=r"^[0-9]+(\.[0-9]+){0,2}$")


class PackVersionStatus(BaseModel):
    version: str
    status: str


class PackSummary(BaseModel):
    key: str
    name: str
    description: str = Field(description="The newest version's description")
    latest_active_version: str | None = Field(description="What a project on `latest active` gets")
    versions: list[PackVersionStatus]


class PackList(BaseModel):
    items: list[PackSummary]


class PackVersion(BaseModel):
    key: str
    version: str
    name: str
    description: str
    status: str
    pack: dict[str, Any]
    created_at: datetime


class PackVersions(BaseModel):
    key: str
    items: list[PackVersion]


class PackCreate(Strict):
    key: str = PackKey
    version: str = PackVersionText
    name: VisibleLine | None = Field(None, min_length=1, max_length=80)
    status: Literal["draft", "active"] = "active"
    pack: dict[str, Any] = Field(description="The pack (see GET /policy_packs/schema)")


class ProjectPolicyUpdate(Strict):
    pack_key: str = PackKey
    pack_version: str | None = Field(
        None,
        min_length=1,
        max_length=20,
        pattern=r"^[0-9]+(\.[0-9]+){0,2}$",
        description="None: the latest active",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Pack fields to change; locked ones only tighten"
    )
    strict: bool = Field(False, description="Blocking findings of the pack block planning and execution")
    repo_local_enabled: bool = Field(False, description="Apply the repository's .tasksgodzilla/policy.yml")


class ProjectPolicy(BaseModel):
    project_id: int
    pack_key: str
    pack_version: str | None = Field(description="None: the latest active version")
    overrides: dict[str, Any]
    strict: bool
    repo_local_enabled: bool
    repo_local_paths: list[str] = Field(description="Where the repository's own policy file is looked for")


class PolicyProblem(BaseModel):
    code: str
    message: str
    field: str | None


class EffectivePolicy(BaseModel):
    pack_key: str
    pack_version: str
    hash: str = Field(description="SHA-256 of the policy's canonical JSON")
    strict: bool
    policy: dict[str, Any]
    problems: list[PolicyProblem] = Field(description="What of the overrides was not applied")


def _version(pack: PolicyPack) -> PackVersion:
    return PackVersion.model_validate(pack.model_dump())


def _project_policy(project: Project) -> ProjectPolicy:
    return ProjectPolicy(
        project_id=project.id,
        pack_key=project.policy_pack_key or policy_service.DEFAULT_PACK,
        pack_version=project.policy_pack_version,
        overrides=project.policy_overrides,
        strict=project.policy_strict,
        repo_local_enabled=project.policy_repo_local_enabled,
        repo_local_paths=list(PATHS),
    )


@api.route(
    "GET", "/policy_packs/schema", summary="The JSON Schema of a policy pack", tag="policy", scope=CATALOGUE
)
async def get_schema(request: web.Request) -> dict[str, Any]:
    return pack_schema()


@api.route(
    "GET",
    "/policy_packs",
    summary="The policy packs: each key, its versions",
    tag="policy",
    scope=CATALOGUE,
    response=PackList,
)
async def list_packs(request: web.Request) -> PackList:
    by_key: dict[str, list[PolicyPack]] = {}
    for pack in await policy_service.catalogue(services(request)):
        by_key.setdefault(pack.key, []).append(pack)
    items = []
    for key, versions in by_key.items():
        active = [p for p in versions if p.status == "active"]
        newest = versions[-1]
        items.append(
            PackSummary(
                key=key,
                name=newest.name,
                description=(active[-1] if active else newest).description,
                latest_active_version=active[-1].version if active else None,
                versions=[PackVersionStatus(version=p.version, status=p.status) for p in versions],
            )
        )
    return PackList(items=items)


@api.route(
    "POST",
    "/policy_packs",
    summary="Add a version of a pack (the operator only)",
    tag="policy",
    scope=SERVICE,
    body=PackCreate,
    response=PackVersion,
    status=201,
    errors=(409, 422),
)
async def create_pack(request: web.Request, body: PackCreate) -> PackVersion:
    created = await policy_service.create_pack(services(request), **body.model_dump())
    return _version(created)


@api.route(
    "GET",
    "/policy_packs/{key}",
    summary="Every version of one pack",
    tag="policy",
    scope=CATALOGUE,
    response=PackVersions,
    errors=(404,),
)
async def get_pack(request: web.Request, key: str) -> PackVersions:
    found = await policy_service.pack_versions(services(request), key)
    return PackVersions(key=key, items=[_version(p) for p in found])


@api.route(
    "GET",
    "/projects/{project_id}/policy",
    summary="The project's policy selection",
    tag="policy",
    scope=tenant(),
    response=ProjectPolicy,
    errors=(404,),
)
async def get_project_policy(request: web.Request, project_id: int) -> ProjectPolicy:
    async with services(request).database.read() as conn:
        return _project_policy(await project_store.get(conn, project_id))


@api.route(
    "PUT",
    "/projects/{project_id}/policy",
    summary="Choose the project's pack (a version, or the latest active), overrides and modes",
    tag="policy",
    scope=tenant(),
    body=ProjectPolicyUpdate,
    response=ProjectPolicy,
    errors=(404, 409, 422),
)
async def put_project_policy(
    request: web.Request, project_id: int, body: ProjectPolicyUpdate
) -> ProjectPolicy:
    project = await policy_service.set_project_policy(
        services(request),
        project_id,
        pack_key=body.pack_key,
        pack_version=body.pack_version,
        overrides=body.overrides,
        strict=body.strict,
        repo_local_enabled=body.repo_local_enabled,
    )
    return _project_policy(project)


@api.route(
    "GET",
    "/projects/{project_id}/policy/effective",
    summary="The project's effective central policy (pack and overrides; a run adds its repository's file)",
    tag="policy",
    scope=tenant(),
    response=EffectivePolicy,
    errors=(404,),
)
async def get_effective_policy(request: web.Request, project_id: int) -> EffectivePolicy:
    resolved = await policy_service.policy_for_project(services(request), project_id)
    return EffectivePolicy(
        pack_key=resolved.pack_key,
        pack_version=resolved.pack_version,
        hash=resolved.hash,
        strict=resolved.strict,
        policy=resolved.policy,
        problems=[PolicyProblem(code=p.code, message=p.message, field=p.field) for p in resolved.problems],
    )
