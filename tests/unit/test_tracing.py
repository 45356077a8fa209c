"""Trace ids derived from a run, and tracing that is nothing at all when it is off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from app.config import Settings
from app.services.context import otlp_endpoint
from app.tracing import RunKey, Tracing, trace_id_hex, traces_url

CREATED = datetime(2026, 12, 7, 21, 0, 0, 123456, tzinfo=UTC)


def test_a_runs_trace_id_is_the_same_wherever_it_is_computed_and_differs_between_runs():
    here = RunKey(7, CREATED)
    elsewhere = RunKey(7, CREATED.astimezone(timezone(timedelta(hours=2))))  # another machine's zone
    assert (here.trace_id, here.root_span_id) == (elsewhere.trace_id, elsewhere.root_span_id)
    assert here.trace_id != RunKey(8, CREATED).trace_id
    assert (
        here.trace_id != RunKey(7, CREATED + timedelta(microseconds=1)).trace_id
    )  # another database's run 7
    assert len(trace_id_hex(here)) == 32


def test_the_exporter_posts_to_the_collectors_traces_path():
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"


def test_no_exporter_no_tracer():
    tracing = Tracing()
    assert not tracing.enabled
    with tracing.span("job x", run=RunKey(1, CREATED)):
        pass
    tracing.record("GET /", started_ns=0, run=None)
    tracing.run_created(RunKey(1, CREATED))
    assert not Tracing.exporting_to(None).enabled
    assert not Tracing.exporting_to("").enabled


def test_a_job_span_hangs_from_the_runs_root_and_its_work_from_the_job():
    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter, batch=False)
    key = RunKey(3, CREATED)
    tracing.run_created(key)  # outside a request: a root span of its own
    with tracing.span("job execute_step_job", run=key), tracing.span("git push", run=RunKey(4, CREATED)):
        pass
    push, job, root = sorted(exporter.get_finished_spans(), key=lambda s: s.name)
    assert root.name == "protocol_run.created"
    assert {s.context.trace_id for s in (root, push, job)} == {key.trace_id}
    assert (root.context.span_id, root.parent) == (key.root_span_id, None)
    assert job.parent.span_id == key.root_span_id
    assert push.parent.span_id == job.context.span_id  # the current span wins over a run given


def test_the_endpoint_is_our_setting_else_the_standard_variable():
    standard = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://standard:4318"}
    assert otlp_endpoint(Settings(), {}) is None
    assert otlp_endpoint(Settings(), standard) == "http://standard:4318"
    assert otlp_endpoint(Settings(otlp_endpoint="http://ours:4318/"), standard) == "http://ours:4318"
    with pytest.raises(ValidationError, match="otlp_endpoint"):
        Settings(otlp_endpoint="collector:4318")
