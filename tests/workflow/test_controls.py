"""Operator controls and failure handling, with a real queue, worker and git."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import ConflictError
from app.jobs.runtime import open_runtime
from app.services import controls, planning, projects, scheduler
from app.store import events, protocols, steps
from app.store import projects as project_store
from app.store.transitions import move_protocol, move_step
from tests.support.workflow import (
    agents_working_in,
    make_repos,
    project_ready,
    run_status,
    running_worker,
    wait_for,
    workflow_settings,
)


async def _jobs(svc, task: str) -> list[dict]:
    return await svc.queue.app.connector.execute_query_all_async(  # type: ignore[attr-defined]
        "SELECT id, status, queueing_lock FROM procrastinate_jobs WHERE task_name = %(task)s", task=task
    )


async def _running_run_with_steps(svc, repos, count: int = 2, *, project_id: int | None = None):
    """A running protocol with pending steps, made directly in the store (no worker involved), in a
    new project or in `project_id`'s."""
    if project_id is None:
        async with svc.database.transaction() as conn:
            project_id = (await project_store.create(conn, name="demo", local_path=str(repos.local))).id
    run = await planning.create_protocol(svc, project_id, title="Do things")
    async with svc.database.transaction() as conn:
        for target in (P.PLANNING, P.PLANNED, P.RUNNING):
            run = await move_protocol(conn, run.id, target, expected_version=run.version)
        made = await steps.create_many(
            conn,
            run.id,
            [{"step_index": i, "name": f"s{i}", "step_file": f"0{i}-s.md"} for i in range(1, count + 1)],
        )
    return run, made


async def test_two_concurrent_run_next_step_calls_queue_one_job(database_url, tmp_path):
    repos = make_repos(tmp_path)
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (_, svc):
        run, made = await _running_run_with_steps(svc, repos)
        outcomes = await asyncio.gather(
            controls.run_next_step(svc, run.id), controls.run_next_step(svc, run.id), return_exceptions=True
        )
        jobs = await _jobs(svc, "execute_step_job")
    assert sorted(type(o).__name__ for o in outcomes) == ["ConflictError", "StepRun"]
    assert [(j["status"], j["queueing_lock"]) for j in jobs] == [("todo", f"execute:{made[0].id}")]


async def test_run_step_and_run_qa_refuse_the_wrong_state(database_url, tmp_path):
    repos = make_repos(tmp_path)
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (_, svc):
        _, made = await _running_run_with_steps(svc, repos)
        with pytest.raises(ConflictError, match="not waiting for QA"):
            await controls.run_qa(svc, made[0].id)
        async with svc.database.transaction() as conn:
            await move_step(conn, made[1].id, S.RUNNING, expected_version=1)
        with pytest.raises(ConflictError, match="step 2 is running"):
            await controls.run_step(svc, made[1].id)


async def test_scheduler_requeues_work_whose_job_went_missing(database_url, tmp_path):
    repos = make_repos(tmp_path)
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (_, svc):
        _, made = await _running_run_with_steps(svc, repos)
        assert await scheduler.requeue_missing_work(svc) == 1
        assert await scheduler.requeue_missing_work(svc) == 0, "its job is waiting now: nothing to add"
        jobs = await _jobs(svc, "execute_step_job")
    assert [j["queueing_lock"] for j in jobs] == [f"execute:{made[0].id}"]


async def test_the_scans_reach_every_active_run_not_only_the_oldest_page(database_url, tmp_path, monkeypatch):
    monkeypatch.setattr(scheduler, "SCAN_LIMIT", 2)  # five runs: three pages
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, stuck_step_seconds=60)
    async with open_runtime(settings, database_url, environ=dict(os.environ)) as (_, svc):
        first, [step] = await _running_run_with_steps(svc, repos, count=1)
        made = [step]
        for _ in range(4):
            made += (await _running_run_with_steps(svc, repos, count=1, project_id=first.project_id))[1]
        assert await scheduler.requeue_missing_work(svc) == 5
        queued = await _jobs(svc, "execute_step_job")
        async with svc.database.transaction() as conn:
            for step in made:
                await move_step(conn, step.id, S.RUNNING, expected_version=step.version)
            await conn.exec_driver_sql("DELETE FROM procrastinate_jobs")  # their jobs are gone
        later = datetime.now(UTC) + timedelta(seconds=120)
        assert await scheduler.fail_stuck_steps(svc, now=later) == 5
    assert sorted(j["queueing_lock"] for j in queued) == sorted(f"execute:{s.id}" for s in made)


async def test_watchdog_blocks_a_step_stuck_without_a_job(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, stuck_step_seconds=60)
    async with open_runtime(settings, database_url, environ=dict(os.environ)) as (_, svc):
        run, made = await _running_run_with_steps(svc, repos)
        async with svc.database.transaction() as conn:
            await move_step(conn, made[0].id, S.RUNNING, expected_version=1)
        assert await scheduler.fail_stuck_steps(svc) == 0, "not stuck yet"
        later = datetime.now(UTC) + timedelta(seconds=120)
        assert await scheduler.fail_stuck_steps(svc, now=later) == 1
        async with svc.database.transaction() as conn:
            step = await steps.get(conn, made[0].id)
            run = await protocols.get(conn, run.id)
            kinds = [e.event_type for e in await events.list_page(conn, step_run_id=step.id)]
    assert (step.status, run.status) == (S.BLOCKED, P.BLOCKED)
    assert kinds[-2:] == ["watchdog.stuck", "step.blocked"]


async def test_a_failing_agent_is_retried_then_blocks_the_run(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_FAIL_STAGE", "execution")
    settings = workflow_settings(tmp_path, job_max_attempts=3)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        run = await planning.create_protocol(svc, project.id, title="Fail to execute")
        await planning.start_protocol(svc, run.id)

        async def blocked():
            return await run_status(svc, run.id) == "blocked"

        await wait_for(blocked, what="the run to block")
        async with svc.database.transaction() as conn:
            first = (await steps.list_for_protocol(conn, run.id))[0]
            kinds = [e.event_type for e in await events.list_page(conn, step_run_id=first.id, limit=200)]
    assert first.status is S.BLOCKED
    assert "scripted failure in execution" in (first.last_error or "")
    assert kinds.count("job.retrying") == 2
    assert kinds.count("job.gave_up") == 1
    assert kinds.count("agent.started") == 3


async def test_cancel_stops_the_running_agent(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_SLEEP", "60")
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        run = await planning.create_protocol(svc, project.id, title="Slow work")
        await planning.start_protocol(svc, run.id)

        async def executing():
            async with svc.database.transaction() as conn:
                plan = await steps.list_for_protocol(conn, run.id)
            return bool(plan) and plan[0].status is S.RUNNING

        await wait_for(executing, what="the first step to run")
        await asyncio.sleep(0.5)
        cancelled = await controls.cancel(svc, run.id)

        async def agent_closed():
            jobs = await _jobs(svc, "execute_step_job")
            return all(j["status"] in ("cancelled", "aborted", "failed", "succeeded") for j in jobs) and jobs

        await wait_for(agent_closed, seconds=30, what="the job to stop")
        async with svc.database.transaction() as conn:
            plan = await steps.list_for_protocol(conn, run.id)
    assert cancelled.status is P.CANCELLED
    assert {s.status for s in plan} == {S.CANCELLED}
    assert not agents_working_in(tmp_path), "the agent process was left running"


async def test_pause_holds_and_resume_carries_on(database_url, tmp_path):
    repos = make_repos(tmp_path)
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (_, svc):
        run, _ = await _running_run_with_steps(svc, repos)
        paused = await controls.pause(svc, run.id)
        assert paused.status is P.PAUSED
        assert await scheduler.requeue_missing_work(svc) == 0, "a paused run gets no new work"
        with pytest.raises(ConflictError):
            await controls.run_next_step(svc, run.id)
        resumed = await controls.resume(svc, run.id)
        jobs = await _jobs(svc, "execute_step_job")
    assert resumed.status is P.RUNNING
    assert len(jobs) == 1


async def test_resume_refuses_a_run_whose_step_needs_a_person(database_url, tmp_path):
    repos = make_repos(tmp_path)
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (_, svc):
        run, made = await _running_run_with_steps(svc, repos)
        async with svc.database.transaction() as conn:
            step = await move_step(conn, made[0].id, S.RUNNING, expected_version=1)
            step = await move_step(conn, step.id, S.BLOCKED, expected_version=step.version)
            run = await protocols.get(conn, run.id)
            await move_protocol(conn, run.id, P.BLOCKED, expected_version=run.version)
        with pytest.raises(ConflictError, match="retry or approve it first"):
            await controls.resume(svc, run.id)
        retried = await controls.retry_step(svc, step.id)
        async with svc.database.transaction() as conn:
            assert (await protocols.get(conn, run.id)).status is P.RUNNING
    assert retried.status is S.PENDING
