"""The request middleware: correlation id and the JSON error envelope (authentication: app/web/auth.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.errors import AuthenticationError, TasksGodzillaError, spec_for
from app.logs import correlation_scope, current_correlation_id, get_logger

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "correlation_id": current_correlation_id(),
        }
    }


def _http_error_response(exc: web.HTTPException) -> web.Response:
    code = exc.reason.lower().replace(" ", "_")
    response = web.json_response(error_body(code, exc.reason), status=exc.status)
    for name in ("Allow", "WWW-Authenticate", "Retry-After"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per request: a correlation id (the caller's X-Request-ID when it is safe, else a new one) on
    every log line, event and answer; every failure answered with the JSON envelope, never a
    traceback or an HTML page. One middleware, not two: each layer costs every request."""
    offered = request.headers.get(REQUEST_ID_HEADER)
    given = offered if offered is not None and _SAFE_REQUEST_ID.fullmatch(offered) else None
    with correlation_scope(given, method=request.method, path=request.path) as correlation_id:
        try:
            response = await handler(request)
        except TasksGodzillaError as exc:
            response = _typed_error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _http_error_response(exc)
        except Exception:
            log.exception("unhandled error")
            response = web.json_response(error_body("internal_error", "internal error"), status=500)
        response.headers[REQUEST_ID_HEADER] = correlation_id
        return response


def _typed_error_response(exc: TasksGodzillaError) -> web.Response:
    spec = spec_for(exc)
    if spec.http_status >= 500:
        log.warning("request failed", code=spec.code, error=exc.message)
    response = web.json_response(error_body(spec.code, exc.message, exc.details), status=spec.http_status)
    if isinstance(exc, AuthenticationError):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response
