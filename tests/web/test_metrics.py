"""`GET /metrics`: the Prometheus text format, figures read from the database, behind the API token."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.domain.events import NewEvent
from app.domain.records import AgentRunStatus, ProjectStatus
from app.store import events, projects, protocols, steps
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support import seed

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def _agent(conn, run, step, *, model: str, status: AgentRunStatus, tokens: int, cost: str) -> None:
    usage = {
        "input_tokens": tokens,
        "output_tokens": tokens // 10,
        "cost_usd": Decimal(cost),
        "duration_ms": 1500,
    }
    await seed.agent_run(conn, run, step, engine="codex", model=model, status=status, **usage)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_report_runs_steps_agents_and_jobs(database_url, client):
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        run = await protocols.create(conn, project.id, title="T", slug="t")
        await protocols.create(conn, project.id, title="U", slug="u")
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "01-a", "step_file": "01-a.md"}]
        )
        await _agent(
            conn, run, step, model="gpt-5", status=AgentRunStatus.SUCCEEDED, tokens=1000, cost="0.25"
        )
        await _agent(conn, run, step, model="gpt-5", status=AgentRunStatus.SUCCEEDED, tokens=500, cost="0.5")
        await _agent(conn, run, step, model="gpt-5", status=AgentRunStatus.FAILED, tokens=10, cost="0")

    assert (await client.get("/metrics")).status == 401
    response = await client.get("/metrics", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = _samples(await response.text())

    ok = frozenset(
        {
            "project": "shop",
            "stage": "execution",
            "engine": "codex",
            "model": "gpt-5",
            "status": "succeeded",
        }.items()
    )
    failed = frozenset({**dict(ok), "status": "failed"}.items())
    assert (
        samples[("tasksgodzilla_protocol_runs", frozenset({"project": "shop", "status": "pending"}.items()))]
        == 2
    )
    step_labels = frozenset({"project": "shop", "status": "pending", "qa_verdict": ""}.items())
    assert samples[("tasksgodzilla_step_runs", step_labels)] == 1
    assert samples[("tasksgodzilla_agent_runs_total", ok)] == 2
    assert samples[("tasksgodzilla_agent_runs_total", failed)] == 1
    assert samples[("tasksgodzilla_agent_tokens_total", ok | {("kind", "input")})] == 1500
    assert samples[("tasksgodzilla_agent_tokens_total", ok | {("kind", "output")})] == 150
    assert samples[("tasksgodzilla_agent_cost_usd_total", ok)] == pytest.approx(0.75)
    assert samples[("tasksgodzilla_agent_seconds_total", ok)] == pytest.approx(3.0)


async def test_jobs_are_counted_by_task_and_status(database_url, client):
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        await projects.set_status(conn, project.id, ProjectStatus.READY, expected_version=project.version)
    created = await client.post(
        f"/projects/{project.id}/protocols", json={"title": "Add login", "start": True}, headers=AUTH
    )
    assert created.status == 201
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    todo = frozenset({"task": "plan_protocol_job", "status": "todo"}.items())
    assert samples[("tasksgodzilla_jobs", todo)] == 1
    queue = await (await client.get("/queue", headers=AUTH)).json()
    assert queue["jobs"]["plan_protocol_job"]["todo"] == 1


async def test_jobs_waiting_per_queue_and_the_oldest_wait(database_url, client):
    """What a worker autoscaler reads: due jobs per queue (every queue listed) and the oldest's wait."""

    async def queue_samples() -> dict[tuple[str, str], float]:
        text = await (await client.get("/metrics", headers=AUTH)).text()
        return {
            (name, dict(labels)["queue"]): value
            for (name, labels), value in _samples(text).items()
            if name.startswith("tasksgodzilla_jobs_waiting") or name.startswith("tasksgodzilla_jobs_oldest")
        }

    before = await queue_samples()
    assert before[("tasksgodzilla_jobs_waiting", "default")] == 0
    assert before[("tasksgodzilla_jobs_waiting", "duties")] == 0
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        await projects.set_status(conn, project.id, ProjectStatus.READY, expected_version=project.version)
    created = await client.post(
        f"/projects/{project.id}/protocols", json={"title": "Add login", "start": True}, headers=AUTH
    )
    assert created.status == 201
    assert (await queue_samples())[("tasksgodzilla_jobs_waiting", "default")] == 1
    async with client.app[SERVICES].database.transaction() as conn:  # not due yet: not waiting
        await conn.exec_driver_sql("UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour'")
    assert (await queue_samples())[("tasksgodzilla_jobs_waiting", "default")] == 0
    async with client.app[SERVICES].database.transaction() as conn:  # due an hour ago: waited an hour
        await conn.exec_driver_sql("UPDATE procrastinate_jobs SET scheduled_at = now() - interval '1 hour'")
    after = await queue_samples()
    assert after[("tasksgodzilla_jobs_waiting", "default")] == 1
    assert 3600 <= after[("tasksgodzilla_jobs_oldest_waiting_seconds", "default")] < 3700
    assert after[("tasksgodzilla_jobs_oldest_waiting_seconds", "duties")] == 0


def _bucket(samples: dict, name: str, labels: dict[str, str], le: str) -> float:
    return samples[(f"{name}_bucket", frozenset({**labels, "le": le}.items()))]


async def test_agent_run_durations_are_a_histogram_by_stage_engine_and_model(database_url, client):
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        run = await protocols.create(conn, project.id, title="T", slug="t")
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "01-a", "step_file": "01-a.md"}]
        )
        finished = (
            (1500, AgentRunStatus.SUCCEEDED),
            (1500, AgentRunStatus.FAILED),
            (2_400_000, AgentRunStatus.SUCCEEDED),
        )
        for duration_ms, status in finished:
            await seed.agent_run(
                conn, run, step, engine="codex", model="gpt-5", status=status, duration_ms=duration_ms
            )
        await seed.agent_run(conn, run, step, engine="codex", model="gpt-5")  # still running: no duration
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    name = "tasksgodzilla_agent_run_duration_seconds"
    labels = {"stage": "execution", "engine": "codex", "model": "gpt-5"}
    assert _bucket(samples, name, labels, "1.0") == 0
    assert _bucket(samples, name, labels, "5.0") == 2
    assert _bucket(samples, name, labels, "1800.0") == 2
    assert _bucket(samples, name, labels, "2700.0") == 3
    assert _bucket(samples, name, labels, "3600.0") == 3
    assert _bucket(samples, name, labels, "+Inf") == 3
    assert samples[(f"{name}_count", frozenset(labels.items()))] == 3
    assert samples[(f"{name}_sum", frozenset(labels.items()))] == pytest.approx(2403.0)


async def test_job_tries_are_a_histogram_by_task_and_outcome(database_url, client):
    """From Procrastinate's own transition events: a try that was retried, then one that succeeded."""
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        await projects.set_status(conn, project.id, ProjectStatus.READY, expected_version=project.version)
    created = await client.post(
        f"/projects/{project.id}/protocols", json={"title": "Add login", "start": True}, headers=AUTH
    )
    assert created.status == 201

    async def move(status: str, *, lasted_seconds: int | None = None) -> None:
        """Move the job as a worker would (Procrastinate's triggers write the events); the try that
        ends here is made to have started `lasted_seconds` earlier."""
        async with client.app[SERVICES].database.transaction() as conn:
            await conn.exec_driver_sql(
                f"UPDATE procrastinate_jobs SET status = '{status}' WHERE task_name = 'plan_protocol_job'"
            )
            if lasted_seconds is not None:
                await conn.exec_driver_sql(
                    f"UPDATE procrastinate_events SET at = at - make_interval(secs => {lasted_seconds}) "
                    "WHERE id = (SELECT max(id) FROM procrastinate_events WHERE type = 'started')"
                )

    await move("doing")
    await move("todo", lasted_seconds=3)  # retried after 3 s
    await move("doing")
    await move("succeeded", lasted_seconds=90)
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    name = "tasksgodzilla_job_duration_seconds"
    retried = {"task": "plan_protocol_job", "outcome": "deferred_for_retry"}
    succeeded = {"task": "plan_protocol_job", "outcome": "succeeded"}
    assert _bucket(samples, name, retried, "1.0") == 0
    assert _bucket(samples, name, retried, "5.0") == 1
    assert samples[(f"{name}_count", frozenset(retried.items()))] == 1
    assert _bucket(samples, name, succeeded, "60.0") == 0
    assert _bucket(samples, name, succeeded, "120.0") == 1
    assert samples[(f"{name}_sum", frozenset(succeeded.items()))] == pytest.approx(90, abs=1)
    failed = frozenset({"task": "plan_protocol_job", "outcome": "failed"}.items())
    assert (f"{name}_count", failed) not in samples


async def test_qa_verdicts_are_counted_by_project_and_verdict(database_url, client):
    async with client.app[SERVICES].database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        run = await protocols.create(conn, project.id, title="T", slug="t")
        for verdict in ("pass", "fail", "pass"):
            await events.append(
                conn,
                NewEvent(
                    project_id=project.id,
                    protocol_run_id=run.id,
                    event_type="qa.verdict",
                    message=f"QA {verdict}",
                    payload={"verdict": verdict},
                ),
            )
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    assert (
        samples[
            ("tasksgodzilla_qa_verdicts_total", frozenset({"project": "shop", "verdict": "pass"}.items()))
        ]
        == 2
    )
    assert (
        samples[
            ("tasksgodzilla_qa_verdicts_total", frozenset({"project": "shop", "verdict": "fail"}.items()))
        ]
        == 1
    )


async def test_http_latency_is_labelled_by_route_pattern_never_the_raw_path(database_url, client):
    for path in ("/health", "/health", "/projects/12345", "/projects/67890", "/no/such/page"):
        await client.get(path, headers=AUTH)
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    latency = {
        dict(labels)["route"]: value
        for (name, labels), value in samples.items()
        if name == "tasksgodzilla_http_request_duration_seconds_count" and dict(labels)["method"] == "GET"
    }
    assert latency == {"/health": 2, "/projects/{project_id}": 2, "unmatched": 1}
    await client.request("PROPFIND", "/dav", headers=AUTH)
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    webdav = frozenset({"route": "unmatched", "method": "other"}.items())
    assert samples[("tasksgodzilla_http_request_duration_seconds_count", webdav)] == 1
    health = {"route": "/health", "method": "GET"}
    assert _bucket(samples, "tasksgodzilla_http_request_duration_seconds", health, "+Inf") == 2


async def test_the_queue_counts_live_jobs_only(database_url, client):
    """Finished jobs stay a week (the retention duty): counting them would read a week of work per call."""
    async with client.app[SERVICES].database.transaction() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES "
            "('default', 'run_qa_job', '{}', 'todo'), ('default', 'run_qa_job', '{}', 'doing'), "
            "('default', 'run_qa_job', '{}', 'succeeded'), ('default', 'plan_protocol_job', '{}', 'failed')"
        )
    queue = await (await client.get("/queue", headers=AUTH)).json()
    assert queue["jobs"] == {"run_qa_job": {"todo": 1, "doing": 1}}
    samples = _samples(await (await client.get("/metrics", headers=AUTH)).text())
    jobs = {dict(labels)["status"] for (name, labels), _ in samples.items() if name == "tasksgodzilla_jobs"}
    assert jobs == {"todo", "doing"}
