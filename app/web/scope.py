"""The one scope check, for every route of the API, the console, the streams and the service pages.

Every route declares a `Scope` (app/domain/scopes.py): API endpoints in their `Api.route`, other
handlers with `@scoped(...)`, static files with `declare_resource`. At start-up `seal` walks the whole
route table and refuses to start if one declares nothing (deny by default). Per request, `resolve`
reads the parameters once (a repeated query parameter is a 422, unless the route declares it may
repeat), checks the caller may call the route, finds where every resource the request names belongs
(any path or query parameter named like `project_id`, `protocol_id`, `step_id`, `agent_run_id`,
`organisation_id`) and refuses what is out of the caller's reach. Handlers then read their
parameters from what was checked (`resolved(request)`), never from the request again.

A tenant asking for a resource of another tenant, or one that does not exist, gets the same 403: the
answer does not tell which. The operator is not looked up (their 404 comes from the handler).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from weakref import WeakKeyDictionary

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute, PrefixedSubAppResource

from app.domain.scopes import RESOURCE_PARAMS, Access, Level, Principal, Scope, declaration_problem, parse_id
from app.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from app.store import tenancy
from app.web.keys import SERVICES

SCOPE_ATTRIBUTE = "tasksgodzilla_scope"
ROUTE_SCOPES = web.AppKey("route_scopes", dict)
# Set by a sub-application whose own middleware runs `resolve` (the console): the only kind the
# application's middleware leaves alone. Any other sub-application stops start-up.
CHECKS_ITS_OWN = web.AppKey("checks_its_own_scope", bool)
_PARAM = re.compile(r"\{(\w+)")
_RESOURCE_SCOPES: WeakKeyDictionary[AbstractResource, Scope] = WeakKeyDictionary()
F = TypeVar("F")
_TOO_LOW = {
    Access.OPERATOR: "this is service-wide: only the service token reaches it",
    Access.ORGANISATION: "a project token cannot do this: use its organisation's token or the service token",
    Access.PROJECT: "a credential is required",
}


@dataclass(frozen=True)
class Resolved:
    """A request's parameters as the check saw them, and who is calling (None on public routes)."""

    principal: Principal | None
    ids: Mapping[str, int]  # resource ids named in the path or query, each checked
    path: Mapping[str, str]  # every path parameter, as text
    query: Mapping[str, str]  # query parameters given once
    many: Mapping[str, list[str]]  # query parameters the route lets repeat

    def narrowing(self) -> dict[str, int]:
        """Store filters that keep a list to the caller's reach (none for the operator)."""
        caller = self.principal
        if caller is not None and caller.level is Level.OPERATOR:
            return {}
        if caller is not None and caller.level is Level.ORGANISATION and caller.organisation_id is not None:
            return {"organisation_id": caller.organisation_id}
        if caller is not None and caller.level is Level.PROJECT and caller.project_id is not None:
            return {"project_id": caller.project_id}
        raise PermissionDeniedError("no credential says whose rows to show")


RESOLVED = web.RequestKey("resolved_scope", Resolved)


def scoped(scope: Scope) -> Callable[[F], F]:
    """Declare what a handler reaches (put it on every handler that is routed)."""

    def declare(handler: F) -> F:
        setattr(handler, SCOPE_ATTRIBUTE, scope)
        return handler

    return declare


def declare_resource(resource: AbstractResource, scope: Scope) -> None:
    """Declare every route of a resource whose handler is not ours (static files)."""
    _RESOURCE_SCOPES[resource] = scope


def declared(route: AbstractRoute) -> Scope | None:
    scope = getattr(route.handler, SCOPE_ATTRIBUTE, None)
    if scope is None and route.resource is not None:
        scope = _RESOURCE_SCOPES.get(route.resource)
    return scope


def route_table(app: web.Application) -> dict[AbstractRoute, Scope]:
    """Every route of `app` and its sub-applications with its scope; a RuntimeError naming each route
    that declares none, each declaration that cannot be right, and each sub-application whose own
    middleware does not run the check."""
    table: dict[AbstractRoute, Scope] = {}
    problems = [
        f"sub-application at {resource.canonical} does not check its own scope"
        for resource in app.router.resources()
        if isinstance(resource, PrefixedSubAppResource)
        and not resource._app.get(CHECKS_ITS_OWN, False)  # aiohttp names no public attribute
    ]
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else "?"
        scope = declared(route)
        if scope is None:
            problems.append(f"{route.method} {path}: no scope declared")
            continue
        if problem := declaration_problem(path, _PARAM.findall(path), scope):
            problems.append(f"{route.method} {problem}")
            continue
        table[route] = scope
    if problems:
        raise RuntimeError("routes without a sound scope:\n  " + "\n  ".join(problems))
    return table


async def seal(app: web.Application) -> None:
    """On start-up: the route table is complete, so check every route declares its scope."""
    app[ROUTE_SCOPES] = route_table(app)


def scope_of(request: web.Request) -> Scope:
    route = request.match_info.route
    if request.match_info.http_exception is not None:
        return Scope(Access.PROJECT, narrows=True)  # 404 / 405: any credential learns only that
    scope = request.config_dict.get(ROUTE_SCOPES, {}).get(route)
    if scope is None:
        raise RuntimeError(f"route {request.method} {request.path!r} has no scope (was the app sealed?)")
    return scope


async def resolve(request: web.Request, principal: Principal | None) -> Resolved:
    """Read and check the request's parameters against the route's scope and the caller; keep the
    result for the handler (`resolved`)."""
    scope = scope_of(request)
    query, many = _query(request, scope.multi)
    path = dict(request.match_info)
    ids = {name: _path_id(name, raw) for name, raw in path.items() if name in RESOURCE_PARAMS}
    ids |= {name: _query_id(name, raw) for name, raw in query.items() if name in RESOURCE_PARAMS}
    if scope.access is not Access.PUBLIC:
        if principal is None or not scope.admits(principal):
            raise PermissionDeniedError(_TOO_LOW[scope.access])
        await _check_reach(request, principal, ids)
    checked = Resolved(principal, ids, path, query, many)
    request[RESOLVED] = checked
    return checked


def resolved(request: web.Request) -> Resolved:
    return request[RESOLVED]


async def _check_reach(request: web.Request, principal: Principal, ids: dict[str, int]) -> None:
    if principal.level is Level.OPERATOR or not ids:
        return
    database = request.config_dict[SERVICES].database
    owners = await tenancy.owners_of(database, [(RESOURCE_PARAMS[name], id_) for name, id_ in ids.items()])
    for name, owner in zip(ids, owners, strict=True):
        if owner is None or not principal.reaches(owner):
            other = "organisation" if principal.level is Level.ORGANISATION else "project"
            raise PermissionDeniedError(f"this token is for another {other}", field=name)


def _query(request: web.Request, multi: frozenset[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Query parameters: each given once, or declared as repeatable (then always a list)."""
    single: dict[str, str] = {}
    many: dict[str, list[str]] = {}
    for key in dict.fromkeys(request.query.keys()):
        values = request.query.getall(key)
        if key in multi:
            many[key] = values
        elif len(values) > 1:
            raise InvalidInputError(
                f"query parameter {key[:60]!r} is given {len(values)} times: give it once", field=key[:60]
            )
        else:
            single[key] = values[0]
    return single, many


def _path_id(name: str, raw: str) -> int:
    value = parse_id(raw)
    if value is None:
        raise NotFoundError(f"no {name.removesuffix('_id')} {raw[:40]!r}", field=name)
    return value


def _query_id(name: str, raw: str) -> int:
    value = parse_id(raw)
    if value is None:
        raise InvalidInputError(f"{name}: not an id (a positive integer)", field=name)
    return value
