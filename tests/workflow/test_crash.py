"""A worker killed with SIGKILL in the middle of a step: the step still completes, exactly once, on
another worker with a tree of its own (data dir, projects root): the killed worker's tree is deleted,
and the plan's commit, never pushed, reaches the second worker through the database."""

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
from app.web.app import create_app
from tests.support.workflow import (
    git,
    make_repos,
    project_ready,
    run_status,
    settings_environment,
    wait_for,
    workflow_settings,
)

TOKEN = "crash-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([CLI, "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_a_killed_worker_loses_no_step_and_doubles_no_commit(database_url, tmp_path, aiohttp_client):
    repos = make_repos(tmp_path)
    trees = {name: tmp_path / name for name in ("a", "b", "here", "api")}

    def environment(tree: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
        settings = workflow_settings(tree, migrate_on_start=False)
        return (
            env
            | settings_environment(settings)
            | {"TASKSGODZILLA_DATABASE_URL": database_url, "AGENT_SLEEP": "3"}
        )

    settings = workflow_settings(trees["here"], migrate_on_start=False)
    log = tmp_path / "workers.log"
    first = _start_worker(environment(trees["a"]), log)
    second = None
    try:
        async with open_runtime(settings, database_url, environ=environment(trees["here"])) as (_, svc):
            project = await projects.register_project(svc, name="demo", git_url=f"file://{repos.origin}")
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
            shutil.rmtree(trees["a"])
            branch = "tasksgodzilla/demo/0001-survive-a-crash"
            assert not git("--git-dir", str(repos.origin), "branch", "--list", branch), "nothing pushed yet"

            second = _start_worker(environment(trees["b"]), log)
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

    # An API process on a tree of its own (neither worker's) serves the artifacts and the diffs.
    shutil.rmtree(trees["b"])
    api_settings = workflow_settings(trees["api"], run_worker=False, api_token=TOKEN)
    client = await aiohttp_client(create_app(api_settings, database_url, environ=environment(trees["api"])))
    listed = await client.get(f"/protocols/{run.id}/artifacts", headers=AUTH)
    assert listed.status == 200, await listed.text()
    names = (await listed.json())["items"]
    assert "plan.md" in names
    assert any(name.startswith("01-") for name in names), names
    plan_md = await client.get(f"/protocols/{run.id}/artifacts/plan.md", headers=AUTH)
    assert plan_md.status == 200
    assert (await plan_md.text()).startswith("# Plan")
    committed = await client.get(f"/protocols/{run.id}/events?type=step.committed", headers=AUTH)
    assert committed.status == 200, await committed.text()
    diffs = [e["payload"] for e in (await committed.json())["items"]]
    assert diffs
    assert all("work/" in " ".join(d["files"]) for d in diffs), diffs


async def _is(svc, run_id: int, status: str) -> bool:
    return await run_status(svc, run_id) == status
