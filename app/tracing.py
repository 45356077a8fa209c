"""OpenTelemetry traces: one trace per protocol run, exported over OTLP/HTTP when an endpoint is set.

A run's spans are linked by a trace id derived from the run itself (its id and creation time), not
by context passed along: a job taken by a worker on another machine, or a webhook applied hours
later, computes the same trace id from the run it works on and joins the trace. The run's root
span has a derived span id too; the request that created the run is that span, and every other
span of the run (a request naming it, a job, a webhook applied to it) is its child. Within a job,
agent runs and pushes are children of the job's span (the current span of the task).

Without an exporter there is no tracer at all: `span` yields at once and `record` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    format_trace_id,
)

SERVICE_NAME = "tasksgodzilla"
SCOPE = InstrumentationScope("tasksgodzilla")
OTLP_TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class RunKey:
    """What a protocol run's trace id is derived from: the same on every machine, unique per run
    (ids repeat across databases; an id with its creation time does not)."""

    protocol_run_id: int
    created_at: datetime

    def _digest(self) -> bytes:
        created = self.created_at.astimezone(UTC).isoformat()
        return hashlib.sha256(f"tasksgodzilla run {self.protocol_run_id} {created}".encode()).digest()

    @property
    def trace_id(self) -> int:
        return int.from_bytes(self._digest()[:16]) or 1

    @property
    def root_span_id(self) -> int:
        return int.from_bytes(self._digest()[16:24]) or 1

    @property
    def root(self) -> SpanContext:
        return SpanContext(
            self.trace_id, self.root_span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )


def traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL: traces go to its /v1/traces."""
    return endpoint.rstrip("/") + OTLP_TRACES_PATH


def trace_id_hex(key: RunKey) -> str:
    """The run's trace id as tracing back ends show it (32 hex digits)."""
    return format_trace_id(key.trace_id)


@dataclass
class _Claim:
    """What a request learnt about the run it worked on (set by services, read by the middleware)."""

    created: RunKey | None = None


_claim: ContextVar[_Claim | None] = ContextVar("tasksgodzilla_trace_claim", default=None)


class Tracing:
    """This process's tracer, or none (no exporter): then every call is a no-op."""

    def __init__(self, exporter: SpanExporter | None = None, *, batch: bool = True) -> None:
        self._processor: SpanProcessor | None = None
        self._provider: TracerProvider | None = None
        if exporter is None:
            return
        # Batched off the event loop in production; tests want each span exported as it ends.
        self._processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the standard way.
        self._provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        self._provider.add_span_processor(self._processor)
        self._tracer = self._provider.get_tracer(SCOPE.name)

    @classmethod
    def exporting_to(cls, endpoint: str | None) -> Tracing:
        """OTLP/HTTP (protobuf) to `endpoint` (a collector's base URL); no endpoint, no tracing."""
        if not endpoint:
            return cls()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(OTLPSpanExporter(endpoint=traces_url(endpoint)))

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @contextlib.contextmanager
    def span(
        self, name: str, *, run: RunKey | None = None, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[None]:
        """A span around the block: a child of the current span, else of `run`'s root, else a root.
        An exception leaving the block marks it failed (and is recorded on it)."""
        if self._provider is None:
            yield
            return
        current = trace.get_current_span().get_span_context()
        parent = None if current.is_valid or run is None else _parent(run)
        with self._tracer.start_as_current_span(name, context=parent, attributes=_clean(attributes)):
            yield

    def fail_current(self, description: str) -> None:
        """Mark the current span (the block of `span`) failed, saying why: for work that fails
        without raising (an agent run that failed or timed out)."""
        if self._provider is not None:
            trace.get_current_span().set_status(Status(StatusCode.ERROR, description))

    def record(
        self,
        name: str,
        *,
        started_ns: int,
        run: RunKey | None,
        kind: SpanKind = SpanKind.INTERNAL,
        error: bool = False,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """A span begun at `started_ns` (time.time_ns) and ending now, for work that learns its run
        only as it ends (a request, a webhook): a child of `run`'s root, else a root of its own."""
        if self._provider is None:
            return
        span = self._tracer.start_span(
            name,
            context=_parent(run) if run is not None else Context(),
            kind=kind,
            attributes=_clean(attributes),
            start_time=started_ns,
        )
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def record_root(
        self,
        name: str,
        run: RunKey,
        *,
        started_ns: int,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """The run's root span (its derived span id), begun at `started_ns` and ending now."""
        if self._processor is None or self._provider is None:
            return
        root = run.root
        span = ReadableSpan(
            name=name,
            context=SpanContext(root.trace_id, root.span_id, is_remote=False, trace_flags=root.trace_flags),
            parent=None,
            resource=self._provider.resource,
            attributes=_clean({**(attributes or {}), "tasksgodzilla.protocol_run_id": run.protocol_run_id}),
            kind=kind,
            start_time=started_ns,
            end_time=time.time_ns(),
            instrumentation_scope=SCOPE,
        )
        self._processor.on_end(span)

    def run_created(self, run: RunKey) -> None:
        """A run was just created: the request doing it becomes its root span; outside a request the
        root is a moment's span of its own (so the run's other spans have their parent)."""
        claim = _claim.get()
        if claim is not None:
            claim.created = run
        else:
            self.record_root("protocol_run.created", run, started_ns=time.time_ns())

    def shutdown(self) -> None:
        """Export what is still batched, then stop."""
        if self._provider is not None:
            self._provider.shutdown()


@contextlib.contextmanager
def claiming() -> Iterator[_Claim]:
    """Within the block (a request), a run created is noted on the claim yielded, not traced at once."""
    claim = _Claim()
    token = _claim.set(claim)
    try:
        yield claim
    finally:
        _claim.reset(token)


def _parent(run: RunKey) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(run.root))


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenTelemetry attributes are never None."""
    return {key: value for key, value in (attributes or {}).items() if value is not None}
