"""`GET /metrics`: the service in the Prometheus text format (needs the API token when one is set).

Every figure but one is read from the database at scrape time (app/store/metrics.py), so it covers all
workers and survives restarts; counts the database keeps as rows change, so a scrape costs the same
at any size: runs and steps by status and QA verdict, QA verdicts given, agent
runs, tokens and cost by project, stage, engine and model (failed runs by model are the error rate),
agent and job durations, live jobs by task and status, the jobs waiting per queue and the age of the oldest
(what a worker autoscaler reads), webhook deliveries by outcome. The exception is HTTP latency: a
histogram of this process (app/web/telemetry.py), as each API process answers its own requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from app.jobs.runtime import QUEUES
from app.store import metric_counts, metrics
from app.store.jobs import host_queue
from app.store.metric_counts import AGENT_BUCKETS, JOB_BUCKETS
from app.web.keys import SERVICES
from app.web.telemetry import HTTP_LATENCY

PREFIX = "tasksgodzilla_"
AGENT_LABELS = ["project", "stage", "engine", "model", "status"]
TOKEN_KINDS = ("input", "cached_input", "output", "reasoning")


class Snapshot(Collector):
    """The metric families of one scrape, built from rows already read."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _gauge(name: str, doc: str, labels: list[str], rows: list[metrics.Row]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for values, (count,) in rows:
        family.add_metric(list(values), count)
    return family


def _histogram(
    name: str, doc: str, labels: list[str], bounds: tuple[float, ...], rows: list[metrics.Row]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(PREFIX + name, doc, labels=labels)
    for values, (count, total, *cumulative) in rows:
        buckets = [*((str(bound), n) for bound, n in zip(bounds, cumulative, strict=True)), ("+Inf", count)]
        family.add_metric(list(values), buckets, total)
    return family


def _counter(name: str, doc: str, labels: list[str], rows: list[metrics.Row]) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for values, (count,) in rows:
        family.add_metric(list(values), count)
    return family


def _agent_families(rows: list[metrics.Row]) -> list[Metric]:
    runs = CounterMetricFamily(PREFIX + "agent_runs", "Agent runs", labels=AGENT_LABELS)
    tokens = CounterMetricFamily(
        PREFIX + "agent_tokens", "Tokens the engines reported", labels=[*AGENT_LABELS, "kind"]
    )
    cost = CounterMetricFamily(
        PREFIX + "agent_cost_usd", "Cost of agent runs in US dollars", labels=AGENT_LABELS
    )
    seconds = CounterMetricFamily(PREFIX + "agent_seconds", "Wall time of agent runs", labels=AGENT_LABELS)
    for labels, (count, *token_counts, dollars, duration) in rows:
        runs.add_metric(list(labels), count)
        for kind, value in zip(TOKEN_KINDS, token_counts, strict=True):
            tokens.add_metric([*labels, kind], value)
        cost.add_metric(list(labels), dollars)
        seconds.add_metric(list(labels), duration)
    return [runs, tokens, cost, seconds]


def _queue_families(rows: list[metrics.Row]) -> list[Metric]:
    # What a worker autoscaler reads (deploy/k8s/worker-autoscaler.yaml): work due and not taken.
    depth = GaugeMetricFamily(
        PREFIX + "jobs_waiting", "Jobs due and not yet taken, by queue", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        PREFIX + "jobs_oldest_waiting_seconds", "How long the oldest due job has waited", labels=["queue"]
    )
    for (queue,), (count, seconds) in rows:
        depth.add_metric([queue], count)
        oldest.add_metric([queue], seconds)
    return [depth, oldest]


async def metrics_page(request: web.Request) -> web.Response:
    database = request.app[SERVICES].database
    async with database.transaction() as conn:  # bounded: what was written since the last fold
        await metric_counts.fold(conn, JOB_BUCKETS)
    async with database.snapshot() as conn:
        counted = await metrics.counts(conn, JOB_BUCKETS)
        jobs = await metrics.jobs_by_status(conn)
        waiting = await metrics.jobs_waiting(conn, [*QUEUES, *map(host_queue, await metrics.hosts(conn))])
    runs, steps, agents = (
        counted.get("protocol_runs", []),
        counted.get("step_runs", []),
        counted.get("agent_runs", []),
    )
    verdicts, deliveries = counted.get("qa_verdicts", []), counted.get("webhook_deliveries", [])
    agent_times = metric_counts.histogram(counted.get("agent_durations", []), AGENT_BUCKETS)
    job_times = metric_counts.histogram(counted.get("job_durations", []), JOB_BUCKETS)
    families: list[Metric] = [
        _gauge("protocol_runs", "Protocol runs by status", ["project", "status"], runs),
        _gauge("step_runs", "Step runs by status and QA verdict", ["project", "status", "qa_verdict"], steps),
        _counter("qa_verdicts", "QA verdicts given, by project", ["project", "verdict"], verdicts),
        *_agent_families(agents),
        _histogram(
            "agent_run_duration_seconds",
            "Wall time of finished agent runs",
            ["stage", "engine", "model"],
            AGENT_BUCKETS,
            agent_times,
        ),
        _histogram(
            "job_duration_seconds",
            "Time of each try of a job, from its start to its outcome",
            ["task", "outcome"],
            JOB_BUCKETS,
            job_times,
        ),
        _gauge("jobs", "Jobs waiting or running, by task and status", ["task", "status"], jobs),
        *_queue_families(waiting),
        _gauge(
            "webhook_deliveries", "Webhook deliveries kept, by outcome", ["provider", "outcome"], deliveries
        ),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(families))
    registry.register(request.app[HTTP_LATENCY])
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
