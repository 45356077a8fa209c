"""The Grafana dashboard: valid JSON whose every query reads a metric /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.web.app import create_app

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tasksgodzilla.json"
METRIC = re.compile(r"\btasksgodzilla_[a-z0-9_]+")
# The series a family of each type has, as queries name them.
SERIES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def _queries(dashboard: dict) -> list[str]:
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [target["expr"] for target in inner.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if isinstance(variable.get("query"), dict):
            found.append(variable["query"]["query"])
    return found


async def test_every_metric_the_dashboard_reads_is_exported(database_url, aiohttp_client, tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    queries = _queries(dashboard)
    assert len(queries) >= 12
    used = {name for query in queries for name in METRIC.findall(query)}

    client = await aiohttp_client(create_app(Settings(run_worker=False, data_dir=tmp_path), database_url))
    assert (await client.get("/health")).status in (200, 503)  # so this process has a latency series
    text = await (await client.get("/metrics")).text()
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SERIES[family.type]
    }
    assert used <= exported, sorted(used - exported)
    for needed in (
        "tasksgodzilla_agent_cost_usd_total",
        "tasksgodzilla_agent_tokens_total",
        "tasksgodzilla_jobs_waiting",
        "tasksgodzilla_jobs_oldest_waiting_seconds",
        "tasksgodzilla_job_duration_seconds_bucket",
        "tasksgodzilla_agent_run_duration_seconds_bucket",
        "tasksgodzilla_http_request_duration_seconds_bucket",
        "tasksgodzilla_qa_verdicts_total",
    ):
        assert needed in used, needed
