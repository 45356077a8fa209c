"""A worker killed with SIGKILL in the middle of a step: the step still completes, exactly once."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from app.domain.records import Stage
from app.jobs.runtime import open_runtime
from app.services import planning, projects
from app.store import agent_runs, events, steps
from tests.support.workflow import (
    git,
    make_repos,
    project_ready,
    run_status,
    settings_environment,
    wait_for,
    workflow_settings,
)

CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([CLI, "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_a_killed_worker_loses_no_step_and_doubles_no_commit(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, migrate_on_start=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    env |= settings_environment(settings) | {"TASKSGODZILLA_DATABASE_URL": database_url, "AGENT_SLEEP": "3"}
    log = tmp_path / "workers.log"
    first = _start_worker(env, log)
    second = None
    try:
        async with open_runtime(settings, database_url, environ=env) as (_, svc):
            project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
            await wait_for(lambda: project_ready(svc, project.id), what="setup by the worker")
            run = await planning.create_protocol(svc, project.id, title="Survive a crash")
            await planning.start_protocol(svc, run.id)

            async def executing():
                async with svc.database.transaction() as conn:
                    found = await events.list_page(
                        conn, protocol_run_id=run.id, event_types=["agent.started"]
                    )
                return [e for e in found if e.payload["stage"] == "execution"]

            await wait_for(executing, what="the first step's agent to start")
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL

            second = _start_worker(env, log)
            await wait_for(lambda: _is(svc, run.id, "completed"), seconds=90, what="recovery and completion")
            async with svc.database.transaction() as conn:
                step_one = (await steps.list_for_protocol(conn, run.id))[0]
                runs = [
                    r for r in await agent_runs.list_for_step(conn, step_one.id) if r.stage is Stage.EXECUTION
                ]
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)

    branch = "tasksgodzilla/demo/0001-survive-a-crash"
    subjects = git("--git-dir", str(repos.origin), "log", "--format=%s", branch).splitlines()
    assert [s for s in subjects if s.endswith("[protocol-0001/01]")] == ["feat: Part 1 [protocol-0001/01]"]
    assert [r.status.value for r in runs] == ["failed", "succeeded"], (
        "the killed attempt, then the one that finished"
    )
    assert re.fullmatch(
        r"abandoned: worker \d+ running job \d+ stopped \(no heartbeat for 3 s\)", runs[0].error or ""
    ), runs[0].error
    assert runs[0].job_id == runs[1].job_id, "the same job, retried"
    assert runs[0].worker_id != runs[1].worker_id, "on the second worker"
    assert step_one.attempts == 1, "one move to running: the retried job resumed it"
    assert git("--git-dir", str(repos.origin), "show", f"{branch}:work/01.txt") == "step 01"


async def _is(svc, run_id: int, status: str) -> bool:
    return await run_status(svc, run_id) == status
