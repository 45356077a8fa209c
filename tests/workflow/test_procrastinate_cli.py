"""`procrastinate --app=app.jobs.app worker`, Procrastinate's own command line, runs our jobs as
`tasksgodzilla worker` does: a protocol goes from setup to completed with only that worker running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.jobs.runtime import open_runtime
from app.services import planning, projects
from app.store import protocols
from tests.support.workflow import (
    make_repos,
    project_ready,
    settings_environment,
    wait_for,
    workflow_settings,
)

PROCRASTINATE = str(Path(sys.executable).with_name("procrastinate"))


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [PROCRASTINATE, "--app=app.jobs.app", "worker"]
    return subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_procrastinates_command_line_runs_a_protocol_to_completion(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, migrate_on_start=False)
    env = _clean_env() | settings_environment(settings) | {"TASKSGODZILLA_DATABASE_URL": database_url}
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log)
    try:
        async with open_runtime(settings, database_url, environ=env) as (_, svc):
            project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
            await wait_for(lambda: project_ready(svc, project.id), what="setup by the worker")
            run = await planning.create_protocol(svc, project.id, title="Through procrastinate")
            await planning.start_protocol(svc, run.id)

            async def completed() -> bool:
                async with svc.database.transaction() as conn:
                    return (await protocols.get(conn, run.id)).status.value == "completed"

            await wait_for(completed, seconds=120, what="the run to complete")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert worker.poll() is not None, log.read_text()


def test_without_a_database_url_it_says_so_and_exits_1(tmp_path):
    done = subprocess.run(
        [PROCRASTINATE, "--app=app.jobs.app", "worker"],
        env=_clean_env() | {"TASKSGODZILLA_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "TASKSGODZILLA_DATABASE_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr
