"""Per request: its latency in a histogram of this process (by route pattern and method) and, when
tracing is on, a span in the trace of the protocol run it created or names (app/tracing.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry.trace import SpanKind
from prometheus_client import Histogram

from app.logs import get_logger
from app.services.traces import run_key
from app.tracing import RunKey, claiming
from app.web.keys import SERVICES

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HTTP_LATENCY_NAME = "tasksgodzilla_http_request_duration_seconds"
# From a cached read (a millisecond) to a slow page or a large upload.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"  # no route: the raw path is never a label (one series per probed URL)
# Any token is a method to HTTP: the others are one label value, not one series each.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes, every few seconds: a trace each would bury the runs' traces.
UNTRACED = frozenset({"/health", "/metrics"})
HTTP_LATENCY = web.AppKey("http_latency", Histogram)


def latency_histogram() -> Histogram:
    """This process's request latency histogram, in no global registry (`/metrics` adds it)."""
    return Histogram(
        HTTP_LATENCY_NAME,
        "HTTP request latency of this process, by route pattern and method",
        labelnames=["route", "method"],
        buckets=HTTP_BUCKETS,
        registry=None,
    )


def route_of(request: web.Request) -> str:
    """The route's pattern (`/protocols/{protocol_id}`), never the path requested."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def telemetry_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost, so the time includes every other middleware and the status is the one sent."""
    started, started_ns = time.perf_counter(), time.time_ns()
    status = 500
    with claiming() as claim:
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a redirect, or an error before the error envelope
            status = exc.status
            raise
        finally:
            route = route_of(request)
            method = request.method if request.method in METHODS else "other"
            request.app[HTTP_LATENCY].labels(route, method).observe(time.perf_counter() - started)
            if route not in UNTRACED:
                try:
                    await _trace(request, route, status, started_ns, claim.created)
                except Exception as exc:  # the answer matters more than its span (the database away)
                    log.warning("could not trace a request", error=repr(exc))


async def _trace(
    request: web.Request, route: str, status: int, started_ns: int, created: RunKey | None
) -> None:
    svc = request.app.get(SERVICES)
    if svc is None or not svc.tracing.enabled:
        return
    attributes: dict[str, object] = {
        "http.request.method": request.method,
        "http.route": route,
        "http.response.status_code": status,
    }
    name = f"{request.method} {route}"
    if created is not None:  # this request created the run: it is the run's root span
        svc.tracing.record_root(
            name, created, started_ns=started_ns, kind=SpanKind.SERVER, attributes=attributes
        )
        return
    run = None
    ids = request.match_info
    with contextlib.suppress(ValueError):  # an id that is not a number names no run
        if "protocol_id" in ids:
            run = await run_key(svc, protocol_run_id=int(ids["protocol_id"]))
        elif "step_id" in ids:
            run = await run_key(svc, step_run_id=int(ids["step_id"]))
    svc.tracing.record(
        name, started_ns=started_ns, run=run, kind=SpanKind.SERVER, error=status >= 500, attributes=attributes
    )
