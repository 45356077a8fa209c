"""Agent runs with their usage and transcripts, protocol artifacts, and the job queue at a glance."""

from __future__ import annotations

from aiohttp import web

from app.domain.records import AgentRun, ProtocolRun
from app.domain.scopes import SERVICE, tenant
from app.services import artifacts
from app.store import agent_runs, metrics, protocols, steps
from app.web.api.common import services
from app.web.api.models import Page
from app.web.api.registry import Api

api = Api()


@api.route(
    "GET",
    "/steps/{step_id}/agent_runs",
    summary="A step's agent runs with tokens and cost",
    tag="agents",
    scope=tenant(),
    response=Page[AgentRun],
    errors=(404,),
)
async def step_agent_runs(request: web.Request, step_id: int) -> dict:
    async with services(request).database.read() as conn:
        await steps.get(conn, step_id)
        return {"items": await agent_runs.list_for_step(conn, step_id), "next_cursor": None}


@api.route(
    "GET",
    "/agent_runs/{agent_run_id}/log",
    summary="An agent run's transcript (secrets redacted)",
    media_types=("text/plain",),
    tag="agents",
    scope=tenant(),
    errors=(404,),
)
async def agent_run_log(request: web.Request, agent_run_id: int) -> web.Response:
    async with services(request).database.read() as conn:
        text = await agent_runs.read_log(conn, agent_run_id)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


@api.route(
    "GET",
    "/protocols/{protocol_id}/artifacts",
    summary="The files of a protocol's folder",
    tag="artifacts",
    scope=tenant(),
    errors=(404,),
)
async def list_artifacts(request: web.Request, protocol_id: int) -> dict:
    run = await _run(request, protocol_id)
    return {"items": await artifacts.list_artifacts(services(request), run)}


@api.route(
    "GET",
    "/protocols/{protocol_id}/artifacts/{name:.+}",
    summary="One file of a protocol's folder",
    media_types=("text/markdown", "text/plain"),
    tag="artifacts",
    scope=tenant(),
    errors=(404, 422),
)
async def read_artifact(request: web.Request, protocol_id: int, name: str) -> web.Response:
    run = await _run(request, protocol_id)
    text = await artifacts.read_artifact(services(request), run, name)
    kind = "text/markdown" if name.endswith(".md") else "text/plain"
    return web.Response(text=text, content_type=kind, charset="utf-8")


async def _run(request: web.Request, protocol_id: int) -> ProtocolRun:
    async with services(request).database.read() as conn:
        return await protocols.get(conn, protocol_id)


@api.route("GET", "/queue", summary="Jobs by status and type (the operator only)", tag="queue", scope=SERVICE)
async def queue_counts(request: web.Request) -> dict:
    async with services(request).database.read() as conn:
        rows = await metrics.jobs_by_status(conn)
    counts: dict[str, dict[str, int]] = {}
    for (task, status), (jobs,) in rows:
        counts.setdefault(task, {})[status] = int(jobs)
    return {"jobs": counts}
