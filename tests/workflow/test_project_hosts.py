"""A project registered by local path lives on one machine: its jobs go to that machine's queue, only
that machine's workers take them, and while none does the console says why. Two "machines" here are
two host names (TASKSGODZILLA_HOST_NAME) with trees of their own."""

from __future__ import annotations

import os

from sqlalchemy import text

from app.jobs.runtime import open_runtime
from app.services import planning, projects
from app.store import jobs
from app.web.app import create_app
from tests.console.support import sign_in
from tests.support.workflow import (
    make_repos,
    project_ready,
    run_status,
    running_worker,
    wait_for,
    workflow_settings,
)

TOKEN = "hosts-token-0123456789"


async def _queues(svc, project_id: int) -> set[str]:
    """The queues of every job deferred for the project: its setup, and its runs' and steps' jobs."""
    async with svc.database.read() as conn:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT j.queue_name FROM procrastinate_jobs j WHERE "
                "(j.args->>'project_id')::bigint = :p "
                "OR (j.args->>'protocol_run_id')::bigint IN "
                "(SELECT id FROM protocol_runs WHERE project_id = :p) "
                "OR (j.args->>'step_run_id')::bigint IN (SELECT s.id FROM step_runs s "
                "JOIN protocol_runs r ON r.id = s.protocol_run_id WHERE r.project_id = :p)"
            ),
            {"p": project_id},
        )
        return set(rows.scalars())


async def test_a_local_project_runs_on_its_host_only_and_the_wait_is_said(
    database_url, tmp_path, aiohttp_client
):
    repos = make_repos(tmp_path / "repos")
    alpha = workflow_settings(tmp_path / "alpha", host_name="alpha")
    beta = workflow_settings(tmp_path / "beta", host_name="beta")
    environ = dict(os.environ)
    async with running_worker(beta, database_url, environ=environ) as on_beta:
        local = await projects.register_project(on_beta, name="local", local_path=str(repos.local))
        shared = await projects.register_project(on_beta, name="shared", git_url=f"file://{repos.origin}")
        assert local.host == "beta"  # registered on beta: it lives there
        assert shared.host is None
        await wait_for(lambda: project_ready(on_beta, local.id), what="beta to set up its own project")

        # Registered by local path on alpha, where no worker runs: beta never takes its jobs.
        async with open_runtime(alpha, database_url, environ=environ) as (_, on_alpha):
            elsewhere = make_repos(tmp_path / "repos-alpha").local
            other = await projects.register_project(on_alpha, name="other", local_path=str(elsewhere))
        assert other.host == "alpha"
        await wait_for(lambda: project_ready(on_beta, shared.id), what="beta to set up the shared project")
        async with on_beta.database.read() as conn:
            assert (await jobs.waiting_on_host(conn, "alpha"))[0] == 1
        assert await _queues(on_beta, other.id) == {"host:alpha"}

        # The console says why it waits, once the job has waited a while.
        app = create_app(workflow_settings(tmp_path / "api", api_token=TOKEN, run_worker=False), database_url)
        client = await aiohttp_client(app)
        await sign_in(client, TOKEN)
        page = await (await client.get(f"/console/projects/{other.id}")).text()
        assert 'id="host-wait"' not in page  # just deferred: not yet worth saying
        async with on_beta.database.transaction() as conn:
            await conn.execute(text("UPDATE procrastinate_events SET at = at - interval '1 minute'"))
        page = await (await client.get(f"/console/projects/{other.id}")).text()
        assert 'id="host-wait"' in page
        assert "for a worker on host <b>alpha</b>" in page
        api = await (
            await client.get(f"/projects/{other.id}", headers={"Authorization": f"Bearer {TOKEN}"})
        ).json()
        assert api["host"] == "alpha"

        # A run of beta's local project: every job of it on beta's queue, and it completes there.
        run = await planning.create_protocol(on_beta, local.id, title="Stay home")
        await planning.start_protocol(on_beta, run.id)
        await wait_for(lambda: _is(on_beta, run.id, "completed"), seconds=120, what="the run on beta")
        assert await _queues(on_beta, local.id) == {"host:beta"}
        assert await _queues(on_beta, shared.id) == {"default"}

    # alpha's worker comes up: its project is set up at last.
    async with running_worker(alpha, database_url, environ=environ) as on_alpha:
        await wait_for(lambda: project_ready(on_alpha, other.id), what="alpha to set up its project")


async def _is(svc, run_id: int, status: str) -> bool:
    return await run_status(svc, run_id) == status
