"""OpenTelemetry traces of a whole protocol run, with a real server, worker, git and scripted agent:
request → jobs → agent runs → git push → CI webhook applied, all in the one trace of the run."""

from __future__ import annotations

import os
import subprocess

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.services import projects
from app.store import protocols
from app.tracing import RunKey, Tracing
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.ci_runs import SECRET, github_request, payload
from tests.support.fake_forge import GITHUB_TOKEN, running_fake_forge
from tests.support.workflow import git, make_repos, project_ready, wait_for, workflow_settings


async def test_a_runs_spans_share_its_trace_and_nest(database_url, aiohttp_client, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_PLAN_STEPS", "1")
    exporter = InMemorySpanExporter()

    def pushed_head(branch: str) -> str | None:
        try:
            return git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None

    async with running_fake_forge(head_sha=pushed_head) as forge:
        settings = workflow_settings(
            tmp_path,
            branch_pattern="{name}",
            auto_qa_after_exec=False,  # QA waits for CI: the webhook is on the run's way
            auto_qa_on_ci=True,
            github_webhook_secret=SECRET,
            github_api_url=forge.url,
            github_token=GITHUB_TOKEN,
        )
        tracing = Tracing(exporter, batch=False)
        client = await aiohttp_client(
            create_app(settings, database_url, environ=dict(os.environ), tracing=tracing)
        )
        svc = client.app[SERVICES]
        project = await projects.register_project(
            svc, name="shop", local_path=str(repos.local), ci_provider="github", forge_repo="acme/shop"
        )
        await wait_for(lambda: project_ready(svc, project.id), what="project setup")
        created = await client.post(
            f"/projects/{project.id}/protocols", json={"title": "Add login", "start": True}
        )
        assert created.status == 201, await created.text()
        run_id = (await created.json())["id"]
        async with svc.database.read() as conn:
            run = await protocols.get(conn, run_id)
        key = RunKey(run.id, run.created_at)

        def names() -> list[str]:
            return [s.name for s in exporter.get_finished_spans() if s.context.trace_id == key.trace_id]

        # The job's span ends once the step has recorded its commit: CI's result then finds it.
        await wait_for(lambda: "job execute_step_job" in names(), seconds=90, what="the step pushed")
        sha = pushed_head("0001-add-login")
        delivered = await client.post(
            "/webhooks/github", **github_request("status", payload("github", "status.success", sha=sha))
        )
        assert delivered.status == 202
        await wait_for(lambda: "job open_pr_job" in names(), seconds=90, what="QA, then the PR")
        assert (await client.get(f"/protocols/{run.id}")).status == 200
        await wait_for(lambda: "GET /protocols/{protocol_id}" in names(), what="the read traced")

    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == key.trace_id]
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    root = by_name["POST /projects/{project_id}/protocols"][0]
    assert (root.context.span_id, root.parent) == (key.root_span_id, None)
    assert root.attributes["http.response.status_code"] == 201

    def parent_of(name: str) -> int:
        [span] = by_name[name]
        assert span.parent is not None, name
        return span.parent.span_id

    def only(name: str) -> int:
        [span] = by_name[name]
        return span.context.span_id

    # Jobs (and the request reading the run, and the CI result applied) hang from the run's root ...
    for name in (
        "job plan_protocol_job",
        "job execute_step_job",
        "job run_quality_job",
        "job open_pr_job",
        "webhook apply",
        "GET /protocols/{protocol_id}",
    ):
        assert parent_of(name) == root.context.span_id, name
    # ... agents and pushes from the job that ran them.
    assert parent_of("agent planning") == only("job plan_protocol_job")
    assert parent_of("agent execution") == only("job execute_step_job")
    assert parent_of("agent qa") == only("job run_quality_job")
    pushes = {span.parent.span_id for span in by_name["git push"] if span.parent is not None}
    assert only("job execute_step_job") in pushes
    assert by_name["webhook apply"][0].attributes["tasksgodzilla.outcome"] == "applied"
    # The project's setup is no run's: its job has a trace of its own.
    [setup] = [s for s in exporter.get_finished_spans() if s.name == "job project_setup_job"]
    assert setup.context.trace_id != key.trace_id
