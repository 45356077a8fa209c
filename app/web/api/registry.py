"""Declaring endpoints once: the route, its scope, its pydantic models, its documentation.

Each endpoint states what it reaches (its `scope`, required: see app/web/scope.py), its path
parameters, query and body models and its response model; the adapter validates the request against
them (unknown fields refused, a repeated query parameter or JSON key refused, a 422 naming the
field), calls the handler with typed values taken from what the scope check read, and serialises the
answer. `openapi.py` reads the same declarations.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from app.domain.conditional import none_match
from app.domain.scopes import Scope
from app.errors import InvalidInputError
from app.web.api.models import encode_cursor
from app.web.idempotency import idempotent
from app.web.scope import RESOLVED, scoped

Handler = Callable[..., Awaitable[Any]]
M = TypeVar("M", bound=BaseModel)
_PARAM = re.compile(r"\{(\w+)(?::[^}]+)?\}")
JSON = "application/json"


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    scope: Scope  # what it reaches, who may call it (app/domain/scopes.py)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    stream: bool = False  # answers with Server-Sent Events (`response`, if set, is each event's data)
    # What a 2xx answer is sent as: JSON of `response` by default; text (`text/plain`, `text/markdown`,
    # ...) when the handler returns a web.Response of its own, one media type per kind it may send.
    media_types: tuple[str, ...] = (JSON,)
    headers: tuple[str, ...] = ()  # request headers it honours: If-Match, Idempotency-Key, Last-Event-ID
    examples: dict[str, Any] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)


class Api:
    """A set of endpoints, installed on an aiohttp router."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self, method: str, path: str, *, summary: str, tag: str, scope: Scope, **options: Any
    ) -> Callable[[Handler], Handler]:
        """Declare an endpoint; `scope` is required (a route that declares nothing does not exist)."""

        def register(handler: Handler) -> Handler:
            query = options.get("query")
            repeatable = frozenset(name for name in _list_fields(query)) if query else frozenset()
            declared = replace(scope, multi=scope.multi | repeatable)
            self.endpoints.append(Endpoint(method, path, handler, summary, tag, declared, **options))
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, scoped(endpoint.scope)(_wrapped(endpoint)))


def _list_fields(model: type[BaseModel]) -> list[str]:
    """The query model's fields that take several values (`?status=a&status=b`)."""
    return [name for name, info in model.model_fields.items() if "list" in str(info.annotation)]


def _wrapped(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The endpoint's handler, inside what its kind needs: reads pay for nothing of the writes'."""
    handle = _adapt(endpoint)
    if endpoint.method == "GET":
        return functools.partial(_conditional, handler=handle)
    if "Idempotency-Key" in endpoint.headers:
        return functools.partial(idempotent, handler=handle)
    return handle


async def _conditional(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A read: 304 Not Modified, with the ETag and no body, when If-None-Match names its ETag."""
    response = await handler(request)
    offered = request.headers.get("If-None-Match")
    if offered is None or response.status != 200:
        return response
    etag = response.headers.get("ETag")
    if etag is None or not none_match(offered, etag):
        return response
    return not_modified(etag)


def not_modified(etag: str) -> web.Response:
    return web.Response(status=304, headers={"ETag": etag})


def _adapt(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        checked = request[RESOLVED]  # the parameters as the scope check read them
        kwargs: dict[str, Any] = {
            name: checked.ids[name] if name in checked.ids else _text(checked.path[name], name)
            for name in endpoint.path_params
        }
        if endpoint.query is not None:
            values = {**request[RESOLVED].query, **request[RESOLVED].many}
            kwargs["query"] = _validated(endpoint.query, values, "query")
        if endpoint.body is not None:
            kwargs["body"] = _validated(endpoint.body, await _json_body(request), "body")
        result = await endpoint.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        return respond(result, status=endpoint.status)

    handle.__name__ = endpoint.handler.__name__
    return handle


def respond(result: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON of a model (or list/dict of them), with an ETag when the resource carries a version."""
    # pydantic-core writes models (and lists and dicts of them) straight to JSON bytes: no dict copy.
    response = web.Response(body=to_json(result), status=status, content_type="application/json")
    version = getattr(result, "version", None)
    if isinstance(version, int) and hasattr(result, "id"):
        response.headers["ETag"] = f'"{version}"'
    response.headers.update(headers or {})
    return response


def respond_row(row: dict[str, Any]) -> web.Response:
    """JSON of a row read as a dict (app/store/run_reads.py), with its version as the ETag: the
    same bytes as its record through `respond`, without building the record."""
    response = web.Response(body=to_json(row), content_type="application/json")
    response.headers["ETag"] = f'"{row["version"]}"'
    return response


def respond_page(rows: list[dict[str, Any]], limit: int) -> web.Response:
    """A page of rows read as dicts, as `page_of` pages records."""
    cursor = encode_cursor(rows[-1]["id"]) if rows and len(rows) == limit else None
    return web.Response(body=to_json({"items": rows, "next_cursor": cursor}), content_type="application/json")


def _text(value: str, name: str) -> str:
    """`value`, unless it holds what no text column or command line can take."""
    if "\x00" in value:
        raise InvalidInputError(f"{name}: NUL characters are not allowed", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{name}: unpaired surrogates are not allowed", field=name) from None
    return value


def _check_texts(data: Any, where: str) -> None:
    """Every string in decoded JSON (keys too) must be storable text; the field is named if not."""
    pending: list[tuple[Any, str]] = [(data, "")]  # a loop, not recursion: JSON may nest deeply
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            _text(value, path or where)
        elif isinstance(value, list):
            pending += [(item, f"{path}.{index}" if path else str(index)) for index, item in enumerate(value)]
        elif isinstance(value, dict):
            for key, item in value.items():
                _text(str(key), path or where)
                pending.append((item, f"{path}.{key}" if path else str(key)))


async def _json_body(request: web.Request) -> Any:
    if not request.body_exists:  # not can_read_body: a middleware may have read (and cached) it
        return {}
    if request.content_type not in ("application/json", ""):
        raise InvalidInputError(
            "the request body must be JSON (Content-Type: application/json)", field="body"
        )
    raw = await request.read()
    try:
        text = raw.decode(request.charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise InvalidInputError("the request body is not UTF-8 text", field="body") from None
    if not text.strip():
        return {}
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the request body is not valid JSON ({exc.msg})", field="body") from None
    except (ValueError, RecursionError):  # an integer of thousands of digits; nesting past the stack
        raise InvalidInputError("the request body is JSON this API cannot read", field="body") from None


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a key twice (which of the two would count is a guess)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidInputError(f"{key[:60]!r} is given twice in one JSON object", field=key[:60])
        found[key] = value
    return found


def validate_input(model: type[M], data: Any, where: str = "form") -> M:
    """`data` as `model`, or an InvalidInputError naming the first bad field (the console's forms too)."""
    return _validated(model, data, where)  # type: ignore[return-value]


def _validated(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    _check_texts(data, where)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]) or where, "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        raise InvalidInputError(
            f"{first['field']}: {first['message']}", field=first["field"], errors=problems
        ) from None
