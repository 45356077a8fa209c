"""Console: usage and charts, as fragments the project and protocol pages load (and reload on change).

A project's: cost and tokens per day over the last days, totals per month, engine and model, and the
jobs waiting now in the queues its jobs go to. A protocol run's: tokens and cost per stage, agent
time and QA pass rate per step. Charts are SVG drawn on the server (app/domain/charts.py), each with
its figures as a table beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from markupsafe import Markup

from app.domain import usage_charts
from app.domain.charts import Chart, render_svg
from app.domain.records import Stage
from app.domain.scopes import tenant
from app.domain.totals import UsageGroup, dollars, project_usage, protocol_usage
from app.jobs.runtime import QUEUES
from app.store import metrics, projects, protocols, steps
from app.store import usage as usage_store
from app.store.jobs import host_queue
from app.web.console.base import entity_id, render, services
from app.web.scope import scoped

routes = web.RouteTableDef()
DAYS = 30  # the project page's daily charts: the last 30 UTC days, today included
TABLES = (UsageGroup.MONTH, UsageGroup.ENGINE, UsageGroup.MODEL)


def _drawn(chart: Chart) -> dict[str, Any]:
    # render_svg escapes every text it writes: the markup is safe to paste as is.
    return {"chart": chart, "svg": Markup(render_svg(chart))}  # noqa: S704


@routes.get("/projects/{project_id}/usage")
@scoped(tenant())
async def project_usage_fragment(request: web.Request) -> web.Response:
    project_id = entity_id(request, "project_id")
    until = datetime.now(UTC).date()
    since = until - timedelta(days=DAYS - 1)
    async with services(request).database.snapshot() as conn:
        project = await projects.get(conn, project_id)
        daily = await usage_store.for_project(conn, project_id, UsageGroup.DAY, since=since, until=until)
        tables = {g: await usage_store.for_project(conn, project_id, g) for g in TABLES}
        queues = [*QUEUES, *([host_queue(project.host)] if project.host else [])]
        waiting = await metrics.jobs_waiting(conn, queues)
    days = project_usage(project_id, UsageGroup.DAY, since, until, daily)
    charts = [
        _drawn(usage_charts.daily_cost(days)),
        _drawn(usage_charts.daily_tokens(days)),
        _drawn(usage_charts.queue_depth([(labels[0], int(v[0]), v[1]) for labels, v in waiting])),
    ]
    shaped = {g.value: project_usage(project_id, g, None, None, rows) for g, rows in tables.items()}
    return render(
        request, "console/_project_usage.html", project=project, days=days, charts=charts, tables=shaped
    )


@routes.get("/protocols/{protocol_id}/usage")
@scoped(tenant())
async def protocol_usage_fragment(request: web.Request) -> web.Response:
    protocol_id = entity_id(request, "protocol_id")
    async with services(request).database.snapshot() as conn:
        run = await protocols.get(conn, protocol_id)
        plan = await steps.list_for_protocol(conn, run.id)
        by_stage = await usage_store.by_stage(conn, run.id)
        by_step = await usage_store.by_step(conn, run.id)
        verdicts = await usage_store.qa_verdicts(conn, run.id)
    charts = [
        _drawn(usage_charts.step_durations(plan, by_step)),
        _drawn(usage_charts.qa_pass_rate(plan, verdicts)),
    ]
    return render(
        request,
        "console/_protocol_usage.html",
        run=run,
        usage=protocol_usage(run.id, by_stage),
        stages=list(Stage),
        charts=charts,
        pass_rate=usage_charts.run_pass_rate(verdicts),
    )


FILTERS = {"dollars": dollars}
