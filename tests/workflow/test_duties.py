"""The periodic duties: Procrastinate periodic tasks, one job per tick across workers, and passes
that a concurrent worker doing the same never aborts."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import psycopg
import structlog
from procrastinate import JobContext

from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.jobs.duties import DUTY_QUEUE, forget_finished_jobs, retry_stalled_jobs
from app.jobs.runtime import open_runtime
from app.jobs.tasks import SERVICES_KEY
from app.services import planning, scheduler
from app.store import projects as project_store
from app.store import protocols, steps
from app.store.transitions import move_protocol, move_step
from tests.support.workflow import make_repos, running_worker, wait_for, workflow_settings

FAST_DUTIES = ("duty_retry_stalled_jobs", "duty_requeue_missing_work", "duty_fail_stuck_steps")


async def _query(app, sql: str, **params) -> list[dict]:
    return await app.connector.execute_query_all_async(sql, **params)


async def test_two_workers_run_each_duty_tick_once(database_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="procrastinate.periodic")
    settings = workflow_settings(tmp_path, scheduler_interval_seconds=1)
    environ = dict(os.environ)
    with structlog.testing.capture_logs() as ours:
        async with (
            running_worker(settings, database_url, environ=environ) as first,
            running_worker(settings, database_url, environ=environ),
        ):
            app = first.queue.app  # type: ignore[attr-defined]

            async def ticks_done() -> bool:
                rows = await _query(
                    app,
                    "SELECT task_name, count(DISTINCT args->>'timestamp') AS ticks FROM procrastinate_jobs "
                    "WHERE queue_name = %(queue)s AND status = 'succeeded' GROUP BY task_name",
                    queue=DUTY_QUEUE,
                )
                done = {row["task_name"]: row["ticks"] for row in rows}
                return all(done.get(name, 0) >= 5 for name in FAST_DUTIES)

            await wait_for(ticks_done, seconds=120, what="five ticks of every duty")
            jobs = await _query(
                app,
                "SELECT task_name, args->>'timestamp' AS tick, count(*) AS jobs FROM procrastinate_jobs "
                "WHERE queue_name = %(queue)s AND status IN ('succeeded', 'failed') GROUP BY 1, 2",
                queue=DUTY_QUEUE,
            )
    assert {row["task_name"] for row in jobs} >= set(FAST_DUTIES)
    # A lagging deferrer may defer a tick again (Procrastinate forgets old ticks): that job does nothing.
    again = [row for row in jobs if row["jobs"] > 1]
    skipped = [e for e in ours if e["event"] == "skipped a stale duty tick"]
    assert len(skipped) >= sum(row["jobs"] - 1 for row in again), f"a tick ran twice: {again}"
    actions = [getattr(record, "action", None) for record in caplog.records]
    # Four deferrers (two workers in each runtime) try every tick; the database let one through.
    assert actions.count("periodic_task_already_deferred") > 0, "the other workers' deferrers never tried"


async def _stalled_jobs(app, count: int) -> list[int]:
    """`count` jobs `doing` on a worker that stopped heartbeating an hour ago."""
    task = app.configure_task("project_setup_job")
    for project_id in range(1, count + 1):
        await task.defer_async(project_id=project_id)
    manager = app.job_manager
    worker_id = await manager.register_worker()
    fetched = [await manager.fetch_job(queues=None, worker_id=worker_id) for _ in range(count)]
    await _query(
        app,
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' "
        "WHERE id = %(id)s RETURNING id",
        id=worker_id,
    )
    return [job.id for job in fetched]


async def test_a_concurrent_retry_never_aborts_the_stalled_jobs_pass(database_url, tmp_path):
    settings = workflow_settings(tmp_path)
    async with open_runtime(settings, database_url, environ=dict(os.environ)) as (app, _):
        first, second = await _stalled_jobs(app, 2)
        # Another worker's pass is retrying the first job right now: its row is locked, uncommitted.
        async with await psycopg.AsyncConnection.connect(database_url) as other:
            await other.execute("SELECT procrastinate_retry_job_v2(%s, now(), NULL, NULL, NULL)", (first,))
            ours = asyncio.create_task(retry_stalled_jobs(app, settings.stalled_after_seconds))

            async def finished_or_waiting() -> bool:
                waiting = await _query(
                    app,
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'",
                )
                return ours.done() or bool(waiting)

            await wait_for(finished_or_waiting, what="our pass to finish or wait for the other's lock")
            await other.commit()
            retried = await ours  # raises if the other's retry aborted it
        rows = await _query(
            app,
            "SELECT id, status, attempts FROM procrastinate_jobs WHERE id = ANY(%(ids)s) ORDER BY id",
            ids=[first, second],
        )
    assert retried == 1, "ours retried the job the other pass was not on"
    assert [(r["id"], r["status"], r["attempts"]) for r in rows] == [
        (first, "todo", 1),
        (second, "todo", 1),
    ], "each job retried exactly once"


async def test_a_stalled_job_whose_work_waits_already_is_failed_and_the_pass_goes_on(database_url, tmp_path):
    """A worker died running a duty's tick, and the next tick waits (the same queueing lock, `todo`).
    Retrying the dead tick would break the lock's unique index and abort the pass, at every tick:
    no stalled job would ever be retried again, no dead worker pruned."""
    settings = workflow_settings(tmp_path)
    async with open_runtime(settings, database_url, environ=dict(os.environ)) as (app, _):
        lock = "duty_requeue_missing_work"
        duty = app.configure_task(lock, queueing_lock=lock, task_kwargs={"timestamp": 1})
        await duty.defer_async()
        await app.configure_task("project_setup_job").defer_async(project_id=1)
        manager = app.job_manager
        worker_id = await manager.register_worker()
        dead_tick, setup = [await manager.fetch_job(queues=None, worker_id=worker_id) for _ in range(2)]
        next_tick = await app.configure_task(
            lock, queueing_lock=lock, task_kwargs={"timestamp": 2}
        ).defer_async()
        await _query(
            app,
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' "
            "WHERE id = %(id)s RETURNING id",
            id=worker_id,
        )
        handled = await retry_stalled_jobs(app, settings.stalled_after_seconds)
        rows = await _query(
            app,
            "SELECT id, status, attempts FROM procrastinate_jobs WHERE id = ANY(%(ids)s)",
            ids=[dead_tick.id, setup.id, next_tick],
        )
        workers = await _query(app, "SELECT id FROM procrastinate_workers WHERE id = %(id)s", id=worker_id)
    assert handled == 2
    assert {r["id"]: (r["status"], r["attempts"]) for r in rows} == {
        dead_tick.id: ("failed", 1),
        setup.id: ("todo", 1),
        next_tick: ("todo", 0),
    }, "the dead tick failed, the other stalled job retried, the next tick left waiting"
    assert workers == [], "the dead worker pruned"


async def test_a_step_moved_during_the_watchdog_pass_is_skipped_and_the_pass_goes_on(
    database_url, tmp_path, monkeypatch
):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, stuck_step_seconds=60)
    async with open_runtime(settings, database_url, environ=dict(os.environ)) as (_, svc):
        async with svc.database.transaction() as conn:
            project = await project_store.create(conn, name="demo", local_path=str(repos.local))
        run = await planning.create_protocol(svc, project.id, title="Do things")
        async with svc.database.transaction() as conn:
            for target in (P.PLANNING, P.PLANNED, P.RUNNING):
                run = await move_protocol(conn, run.id, target, expected_version=run.version)
            made = await steps.create_many(
                conn, run.id, [{"step_index": i, "name": f"s{i}", "step_file": f"0{i}-s.md"} for i in (1, 2)]
            )
            made = [await move_step(conn, s.id, S.RUNNING, expected_version=s.version) for s in made]
        real_record = scheduler.record
        moved = []

        async def record_then_race(conn, *args, **kwargs):
            # While the pass holds the first step, another pass blocks it and commits first.
            step = kwargs["step"]
            if not moved:
                moved.append(step.id)
                async with svc.database.transaction() as other:
                    await move_step(other, step.id, S.BLOCKED, expected_version=step.version, reason="other")
            return await real_record(conn, *args, **kwargs)

        monkeypatch.setattr(scheduler, "record", record_then_race)
        later = datetime.now(UTC) + timedelta(seconds=120)
        blocked = await scheduler.fail_stuck_steps(svc, now=later)
        async with svc.database.transaction() as conn:
            statuses = [(await steps.get(conn, s.id)).status for s in made]
            run = await protocols.get(conn, run.id)
    assert moved == [made[0].id]
    assert blocked == 1, "the second step was still blocked by this pass"
    assert statuses == [S.BLOCKED, S.BLOCKED]
    assert run.status is P.BLOCKED


async def test_finished_jobs_are_forgotten_after_their_keep_time(database_url, tmp_path):
    ages = {  # (status, age in hours) → kept?
        ("succeeded", 2): True,
        ("succeeded", 8 * 24): False,
        ("failed", 8 * 24): True,
        ("failed", 31 * 24): False,
        ("aborted", 31 * 24): False,
        ("todo", 90 * 24): True,
    }
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (app, _):
        ids = {}
        for status, hours in ages:
            [row] = await _query(
                app,
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
                "VALUES ('default', 'execute_step_job', '{}', %(status)s) RETURNING id",
                status=status,
            )
            await _query(
                app,
                "INSERT INTO procrastinate_events (job_id, type, at) "
                "VALUES (%(id)s, 'deferred', now() - make_interval(hours => %(hours)s)) RETURNING id",
                id=row["id"],
                hours=hours,
            )
            ids[(status, hours)] = row["id"]
        await forget_finished_jobs(app)
        left = {r["id"] for r in await _query(app, "SELECT id FROM procrastinate_jobs")}
    assert {key: ids[key] in left for key in ages} == ages


async def test_a_tick_deferred_again_after_it_ran_does_nothing(database_url, tmp_path, monkeypatch):
    calls = []

    async def spy(svc, **_):
        calls.append(svc)
        return 0

    monkeypatch.setattr(scheduler, "fail_stuck_steps", spy)
    async with open_runtime(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as (
        app,
        svc,
    ):
        task = app.tasks["duty_fail_stuck_steps"]
        tick = 1_796_000_000
        ran = await app.configure_task(task.name).defer_async(timestamp=tick)
        await _query(
            app, "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %(id)s RETURNING id", id=ran
        )
        await app.configure_task(task.name).defer_async(timestamp=tick)  # a lagging deferrer's copy
        manager = app.job_manager
        job = await manager.fetch_job(queues=[DUTY_QUEUE], worker_id=await manager.register_worker())
        context = JobContext(
            app=app,
            job=job,
            start_timestamp=time.time(),
            abort_reason=lambda: None,
            additional_context={SERVICES_KEY: svc},
        )
        with structlog.testing.capture_logs() as logs:
            await task.func(context, timestamp=tick)
            assert calls == [], "the tick had run: its copy does nothing"
            await task.func(context, timestamp=tick + 1)  # a newer tick runs
    assert calls != []
    assert [e["event"] for e in logs].count("skipped a stale duty tick") == 1
