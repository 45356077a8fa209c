"""An agent run is called abandoned only when the worker (or the try of the job) running it is gone."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.domain.records import AgentRunStatus, Stage
from app.store import agent_runs
from app.store import projects as project_store
from app.store.agent_runs import RunningJob

STALE_AFTER = 30


async def _worker(conn, *, seconds_ago: float) -> int:
    return await conn.scalar(
        text(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - make_interval(secs => :ago)) RETURNING id"
        ),
        {"ago": seconds_ago},
    )


async def _job(conn, *, worker_id: int | None, status: str = "doing", attempts: int = 0) -> int:
    return await conn.scalar(
        text(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status, worker_id, attempts) VALUES "
            "('default', 'execute_step_job', CAST(:status AS procrastinate_job_status), :worker, :attempts) "
            "RETURNING id"
        ),
        {"status": status, "worker": worker_id, "attempts": attempts},
    )


async def _run(conn, project_id: int, job: RunningJob | None):
    return await agent_runs.start(
        conn,
        project_id=project_id,
        stage=Stage.EXECUTION,
        engine="command",
        model=None,
        prompt_version=None,
        job=job,
    )


@pytest.fixture
async def project_id(database):
    async with database.transaction() as conn:
        return (await project_store.create(conn, name="demo", local_path="/srv/demo")).id


async def test_only_runs_whose_worker_or_job_is_gone_are_abandoned(database, project_id):
    async with database.transaction() as conn:
        alive, dead = await _worker(conn, seconds_ago=1), await _worker(conn, seconds_ago=600)
        live_job = await _job(conn, worker_id=alive, attempts=2)
        dead_job = await _job(conn, worker_id=dead)
        retried_job = await _job(conn, worker_id=alive, attempts=1)  # its try 0 ended; try 1 runs
        live = await _run(conn, project_id, RunningJob(live_job, 2, alive))
        orphan = await _run(conn, project_id, RunningJob(dead_job, 0, dead))
        earlier_try = await _run(conn, project_id, RunningJob(retried_job, 0, alive))
        unowned = await _run(conn, project_id, None)
        closed = await agent_runs.close_abandoned(conn, stale_after_seconds=STALE_AFTER)
        after = {r.id: r for r in await agent_runs.list_for_project(conn, project_id)}
    assert closed == 2
    assert after[live.id].status is AgentRunStatus.RUNNING, "its worker is alive and on its job"
    assert after[unowned.id].status is AgentRunStatus.RUNNING, "nothing tells whether it lives"
    assert after[orphan.id].status is AgentRunStatus.FAILED
    assert after[orphan.id].error == (
        f"abandoned: worker {dead} running job {dead_job} stopped (no heartbeat for {STALE_AFTER} s)"
    )
    assert after[earlier_try.id].error == (
        f"abandoned: try 1 of job {retried_job} ended on worker {alive} without closing this run"
    )


async def test_a_pruned_worker_counts_as_gone(database, project_id):
    async with database.transaction() as conn:
        worker = await _worker(conn, seconds_ago=0)
        job = await _job(conn, worker_id=worker)
        run = await _run(conn, project_id, RunningJob(job, 0, worker))
        await conn.execute(text("DELETE FROM procrastinate_workers WHERE id = :id"), {"id": worker})
        assert await agent_runs.close_abandoned(conn, stale_after_seconds=STALE_AFTER) == 1
        closed = await agent_runs.get(conn, run.id)
    assert closed.status is AgentRunStatus.FAILED
    assert f"worker {worker} running job {job} stopped" in (closed.error or "")


async def test_a_new_run_closes_an_unowned_one_saying_it_cannot_know(database, project_id):
    async with database.transaction() as conn:
        alive = await _worker(conn, seconds_ago=0)
        live_job = await _job(conn, worker_id=alive)
        live = await _run(conn, project_id, RunningJob(live_job, 0, alive))
        unowned = await _run(conn, project_id, None)
        closed = await agent_runs.close_superseded(
            conn,
            project_id=project_id,
            protocol_run_id=None,
            step_run_id=None,
            stage=Stage.EXECUTION,
            stale_after_seconds=STALE_AFTER,
        )
        after = {r.id: r for r in await agent_runs.list_for_project(conn, project_id)}
    assert closed == 1
    assert after[live.id].status is AgentRunStatus.RUNNING
    assert after[unowned.id].status is AgentRunStatus.FAILED
    assert "ran outside the job queue" in (after[unowned.id].error or "")
    assert "cannot be known" in (after[unowned.id].error or "")
