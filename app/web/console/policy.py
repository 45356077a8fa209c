"""Console: a project's policy settings. Its pack (key and version), overrides (common fields and the
whole JSON), strict mode and the repository's own file; the effective policy and its hash, previewed
for the form's values without saving (app.domain.policy_form reads the form)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from app.domain.policy import STRICTNESS
from app.domain.policy_file import PATHS
from app.domain.policy_form import (
    FIELDS,
    JSON_FIELD,
    VERSION_PREFIX,
    PolicyFormError,
    form_values,
    selection_from_form,
)
from app.domain.records import Project
from app.domain.scopes import tenant
from app.errors import ConflictError, InvalidInputError, NotFoundError, spec_for
from app.services import policy as policy_service
from app.services.policy import RunPolicy
from app.store import projects
from app.web.console.base import entity_id, form, params, redirect, render, services
from app.web.scope import scoped

routes = web.RouteTableDef()


@routes.get("/projects/{project_id}/policy")
@scoped(tenant())
async def policy_page(request: web.Request) -> web.Response:
    project = await _project(request)
    shown = form_values(project.policy_overrides)
    shown["pack_key"] = project.policy_pack_key or policy_service.DEFAULT_PACK
    if project.policy_pack_version is not None:
        shown[VERSION_PREFIX + shown["pack_key"]] = project.policy_pack_version
    shown |= {
        "strict": _flag(project.policy_strict),
        "repo_local_enabled": _flag(project.policy_repo_local_enabled),
    }
    saved = params(request).query.get("saved") == "1"
    return await _page(request, project, shown, notice="policy saved" if saved else "", error_field="")


@routes.post("/projects/{project_id}/policy")
@scoped(tenant())
async def save_policy(request: web.Request) -> web.Response:
    """Save the form's selection; refused, the page again with every submitted value and the reason."""
    project = await _project(request)
    values = await form(request)
    values.pop("csrf_token", None)
    try:
        chosen = selection_from_form(values)
        await policy_service.set_project_policy(
            services(request),
            project.id,
            pack_key=chosen.pack_key,
            pack_version=chosen.pack_version,
            overrides=chosen.overrides,
            strict=chosen.strict,
            repo_local_enabled=chosen.repo_local_enabled,
        )
    except PolicyFormError as exc:
        return await _page(request, project, values, notice=exc.message, error_field=exc.field, status=422)
    except (InvalidInputError, ConflictError) as exc:
        field = _form_field(exc.details.get("field"), values)
        status = spec_for(exc).http_status
        return await _page(request, project, values, notice=exc.message, error_field=field, status=status)
    return redirect(f"/console/projects/{project.id}/policy?saved=1")


@routes.post("/projects/{project_id}/policy/preview")
@scoped(tenant())
async def preview_policy(request: web.Request) -> web.Response:
    """The effective policy for the form's values (the `_policy_preview` fragment); nothing is saved."""
    project_id = entity_id(request, "project_id")
    values = await form(request)
    try:
        chosen = selection_from_form(values)
        effective = await policy_service.preview_project_policy(
            services(request),
            project_id,
            pack_key=chosen.pack_key,
            pack_version=chosen.pack_version,
            overrides=chosen.overrides,
            strict=chosen.strict,
        )
    except (PolicyFormError, InvalidInputError) as exc:
        message = exc.message
        return render(request, "console/_policy_preview.html", status=422, preview=None, error=message)
    note = "from the JSON box (the fields above were not read)" if chosen.json_won else "from the fields"
    return render(
        request, "console/_policy_preview.html", preview=_preview(effective, draft=True, note=note), error=""
    )


async def _page(
    request: web.Request,
    project: Project,
    shown: dict[str, str],
    *,
    notice: str,
    error_field: str,
    status: int = 200,
) -> web.Response:
    svc = services(request)
    packs = await _packs(request)
    try:
        saved: dict[str, Any] | None = _preview(
            await policy_service.policy_for_project(svc, project.id), draft=False, note="saved"
        )
        saved_error = ""
    except NotFoundError as exc:  # the saved pack version is gone from the catalogue
        saved, saved_error = None, exc.message
    return render(
        request,
        "console/policy.html",
        status=status,
        project=project,
        packs=packs,
        form=shown,
        fields=FIELDS,
        json_field=JSON_FIELD,
        version_prefix=VERSION_PREFIX,
        strictness=STRICTNESS,
        paths=PATHS,
        preview=saved,
        error=saved_error,
        notice=notice,
        failed=status >= 400,
        error_field=error_field,
    )


async def _packs(request: web.Request) -> list[dict[str, Any]]:
    """Every pack key with an active version: its name, the newest active description, its active
    versions (oldest first)."""
    by_key: dict[str, list[Any]] = {}
    for pack in await policy_service.catalogue(services(request)):
        if pack.status == "active":
            by_key.setdefault(pack.key, []).append(pack)
    return [
        {
            "key": key,
            "name": versions[-1].name,
            "description": versions[-1].description,
            "versions": [p.version for p in versions],
        }
        for key, versions in by_key.items()
    ]


def _preview(effective: RunPolicy, *, draft: bool, note: str) -> dict[str, Any]:
    return {
        "pack": f"{effective.pack_key}@{effective.pack_version}",
        "hash": effective.hash,
        "json": json.dumps(effective.policy, indent=2, sort_keys=True, ensure_ascii=False),
        "problems": effective.problems,
        "strict": effective.strict,
        "draft": draft,
        "note": note,
    }


def _form_field(field: str | None, values: dict[str, str]) -> str:
    """The form field an error names: `overrides.plan.max_steps` is the `plan.max_steps` input unless
    the JSON box was the overrides, then the JSON box."""
    if field is None:
        return ""
    name = field.removeprefix("overrides.")
    if name != field:
        try:
            json_won = selection_from_form(values).json_won
        except PolicyFormError:
            json_won = True
        return name if name in FIELDS and not json_won else JSON_FIELD
    return VERSION_PREFIX + values.get("pack_key", "") if field == "pack_version" else field


def _flag(value: bool) -> str:
    return "true" if value else ""


async def _project(request: web.Request) -> Project:
    async with services(request).database.read() as conn:
        return await projects.get(conn, entity_id(request, "project_id"))
