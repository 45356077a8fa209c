"""Traces leave over real OTLP/HTTP: a local receiver decodes the protobuf the exporter sends."""

from __future__ import annotations

import gzip

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from app.config import Settings
from app.domain.records import ProjectStatus
from app.store import projects, protocols
from app.tracing import RunKey
from app.web.app import create_app
from app.web.keys import SERVICES


async def test_spans_reach_an_otlp_http_receiver_named_by_the_standard_variable(
    database_url, aiohttp_client, aiohttp_server, tmp_path
):
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.headers["Content-Type"] == "application/x-protobuf"
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        received.append(ExportTraceServiceRequest.FromString(body))
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(receiver)

    settings = Settings(run_worker=False, data_dir=tmp_path / "data")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": str(server.make_url("/"))}
    client = await aiohttp_client(create_app(settings, database_url, environ=environ))
    svc = client.app[SERVICES]
    assert svc.tracing.enabled
    async with svc.database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        await projects.set_status(conn, project.id, ProjectStatus.READY, expected_version=project.version)
    created = await client.post(f"/projects/{project.id}/protocols", json={"title": "Add login"})
    assert created.status == 201
    run_id = (await created.json())["id"]
    assert (await client.get(f"/protocols/{run_id}")).status == 200
    assert (await client.get("/protocols/999999")).status == 404
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run_id)
    key = RunKey(run.id, run.created_at)
    await client.close()  # the service stops: what its exporter still holds is sent first

    spans = [
        span
        for request in received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    services = {
        attribute.value.string_value
        for request in received
        for resource_spans in request.resource_spans
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"tasksgodzilla"}
    in_run = {span.name: span for span in spans if span.trace_id == key.trace_id.to_bytes(16)}
    assert set(in_run) == {"POST /projects/{project_id}/protocols", "GET /protocols/{protocol_id}"}
    root = in_run["POST /projects/{project_id}/protocols"]
    assert (root.span_id, root.parent_span_id) == (key.root_span_id.to_bytes(8), b"")
    assert in_run["GET /protocols/{protocol_id}"].parent_span_id == root.span_id
    [missing] = [span for span in spans if span.trace_id != key.trace_id.to_bytes(16)]
    assert missing.name == "GET /protocols/{protocol_id}"  # no such run: a trace of its own
    assert missing.parent_span_id == b""
