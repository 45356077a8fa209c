"""OpenAPI 3.1, built from the same endpoint declarations and pydantic models that check requests."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from app import __version__
from app.domain.scopes import MAX_ID, Access
from app.web.api.registry import JSON, Endpoint
from app.web.auth import ORGANISATION_TOKEN_HEADER, PROJECT_TOKEN_HEADER

REF = "#/components/schemas/{model}"
EVENT_STREAM = "text/event-stream"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "correlation_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
                "correlation_id": {"type": ["string", "null"]},
            },
        }
    },
}
REASONS = {
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    422: "Invalid input",
    502: "Upstream failure",
    503: "Unavailable",
}


HEADERS: dict[str, dict[str, Any]] = {
    "If-Match": {
        "description": "The ETag read before: the write happens only if nobody wrote since (else 409).",
        "schema": {"type": "string", "maxLength": 40},
        "example": '"3"',
    },
    "If-None-Match": {
        "description": "The ETag (or ETags, comma-separated) of the copy you hold: 304 with no body while "
        "it is current. Weak (`W/`) and strong tags compare alike.",
        "schema": {"type": "string", "maxLength": 200},
        "example": '"3"',
    },
    "Idempotency-Key": {
        "description": (
            "Retry-safe creation: the key is stored with what it created (kept a day); a retry gets that "
            "resource (Idempotent-Replayed: true), never a second one; 409 while the first is in progress."
        ),
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,200}$"},
        "example": "create-login-page-1",
    },
    "Last-Event-ID": {
        "description": "Resume a stream right after this event: the `id` of the last message received "
        "(an EventSource sends it when it reconnects), or a plain event id. Nothing is skipped: each "
        "message's `id` is a cursor in the log's order. Takes precedence over `after`.",
        "schema": {"type": "string", "maxLength": 100},
        "example": "MTIzOjQ1",
    },
}


def build_spec(endpoints: list[Endpoint], *, secured: bool) -> dict[str, Any]:
    """The whole document for `endpoints`; `secured` adds the credentials non-public ones take: the
    service's bearer token, an organisation's token (its projects alone) or a project's own token (that
    project's resources alone), as each endpoint's scope allows."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        path = _plain_path(endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, components, secured)
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "TasksGodzilla", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "organisationToken": {"type": "apiKey", "in": "header", "name": ORGANISATION_TOKEN_HEADER},
            "projectToken": {"type": "apiKey", "in": "header", "name": PROJECT_TOKEN_HEADER},
        }
    return spec


def _plain_path(path: str) -> str:
    """`/x/{branch:.+}` → `/x/{branch}`: OpenAPI has no patterns in paths."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def _schema(annotation: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(annotation).json_schema(ref_template=REF, mode="serialization")
    components.update(schema.pop("$defs", {}))
    return schema


def _operation(endpoint: Endpoint, components: dict[str, Any], secured: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": _responses(endpoint, components),
    }
    if endpoint.body is not None:
        body = TypeAdapter(endpoint.body).json_schema(ref_template=REF, mode="validation")
        components.update(body.pop("$defs", {}))
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if secured and endpoint.scope.access is not Access.PUBLIC:
        operation["security"] = [{scheme: []} for scheme in _SCHEMES[endpoint.scope.access]]
    return operation


_SCHEMES = {
    Access.OPERATOR: ("bearer",),
    Access.ORGANISATION: ("bearer", "organisationToken"),
    Access.PROJECT: ("bearer", "organisationToken", "projectToken"),
}


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters = []
    for name in endpoint.path_params:
        schema = (
            {"type": "integer", "minimum": 1, "maximum": MAX_ID}
            if name.endswith("_id")
            else {"type": "string"}
        )
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if endpoint.query is not None:
        properties: dict[str, Any] = endpoint.query.model_json_schema(ref_template=REF).get("properties", {})
        for name, prop in properties.items():
            query: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
            if prop.get("type") == "array":
                query |= {"style": "form", "explode": True}
            parameters.append(query)
    for header in (*endpoint.headers, *(("If-None-Match",) if sends_etag(endpoint) else ())):
        parameters.append({"name": header, "in": "header", "required": False, **HEADERS[header]})
    return parameters


def sends_etag(endpoint: Endpoint) -> bool:
    """A read of one versioned resource: its answer carries an ETag, honoured by If-None-Match."""
    model = endpoint.response
    return (
        endpoint.method == "GET"
        and isinstance(model, type)
        and issubclass(model, BaseModel)
        and {"id", "version"} <= model.model_fields.keys()
    )


def _responses(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if endpoint.status == 204:
        responses["204"] = {"description": "Done"}
    elif endpoint.stream:
        responses["200"] = {
            "description": "Events, as they happen",
            "content": {EVENT_STREAM: {"schema": _event_schema(endpoint, components)}},
        }
    else:
        responses[str(endpoint.status)] = {"description": "OK", "content": _content(endpoint, components)}
    if sends_etag(endpoint):
        responses["304"] = {"description": "Not modified: If-None-Match names the current ETag (no body)"}
    error = {"content": {JSON: {"schema": {"$ref": REF.format(model="Error")}}}}
    statuses = {*endpoint.errors, 422}
    if endpoint.scope.access is not Access.PUBLIC:
        statuses |= {401, 403}  # no or bad credentials; a tenant's token used beyond its reach
    if endpoint.body is not None:
        statuses.add(413)  # past the size limit on request bodies
    for status in sorted(statuses):
        responses[str(status)] = {"description": REASONS.get(status, "Error"), **error}
    return responses


def _content(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    """One entry per media type the endpoint answers with: its model as JSON, or text."""
    content = {}
    for media_type in endpoint.media_types:
        if media_type != JSON:
            content[media_type] = {"schema": {"type": "string"}}
        elif endpoint.response is not None:
            content[media_type] = {"schema": _schema(endpoint.response, components)}
        else:
            content[media_type] = {"schema": {"type": "object"}}
    return content


def _event_schema(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event (OpenAPI 3.1 has no `itemSchema`: the schema describes each event)."""
    data: dict[str, Any] = {"type": "string"}
    if endpoint.response is not None:
        data |= {"contentMediaType": JSON, "contentSchema": _schema(endpoint.response, components)}
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
            "data": data,
        },
    }
