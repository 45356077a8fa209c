"""A worker frozen (SIGSTOP) in the middle of a step, past the stall window, then thawed (SIGCONT).

Two `tasksgodzilla worker` processes. When the step's execution agent starts, the test freezes the
worker that started it. Its heartbeat stops, so the other worker retries the job after
TASKSGODZILLA_STALLED_AFTER_SECONDS and runs the step again. While that second agent works, the
frozen worker is thawed: it wakes up with its own agent's (stale) result in hand. That late result
must be fenced off: the step is committed once, completes once and is judged by QA once.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from app.domain.workspace import protocol_worktree_path
from app.jobs.runtime import QUEUES, open_runtime
from app.services import planning, projects
from tests.support.fault_probes import (
    probe_value,
    read_events,
    read_runs,
    read_steps,
    run_settled,
)
from tests.support.faults import (
    Fleet,
    execution_agent,
    fault_environment,
    fault_settings,
    free_port,
    report,
    tagged_commits,
    unharmed,
)
from tests.support.workflow import make_repos, project_ready, wait_for


async def test_a_thawed_worker_cannot_redo_a_step_taken_over(database_url, tmp_path, fleets):
    repos = make_repos(tmp_path)
    settings = fault_settings(tmp_path)
    env = fault_environment(settings, database_url, AGENT_PLAN_STEPS="1", AGENT_SLEEP="2")
    fleet: Fleet = fleets(env)
    fleet.worker("w1")
    fleet.worker("w2")
    async with open_runtime(settings, database_url, environ=env) as (_, svc):
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), seconds=60, what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Freeze")
        await planning.start_protocol(svc, run.id)

        first = await wait_for(lambda: execution_agent(fleet), seconds=60, what="the execution agent")
        frozen = fleet.named(first.owner)
        frozen.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        job_id = await wait_for(
            lambda: probe_value(
                database_url, "SELECT id FROM procrastinate_jobs WHERE task_name = 'execute_step_job'"
            ),
            seconds=30,
            what="the step's job",
        )
        second = await wait_for(
            lambda: execution_agent(fleet, besides=first.owner),
            seconds=60,
            what="another worker to take the step over",
        )
        taken_over = time.monotonic() - frozen_at
        offset = frozen.log.stat().st_size
        frozen.signal(signal.SIGCONT)  # while the other worker's agent is still working
        ended = f"execute_step_job[{job_id}]"  # Procrastinate logs every job's outcome on one line
        await wait_for(
            lambda: any(
                ended in line and "ended with status" in line
                for line in frozen.log.read_text()[offset:].splitlines()
            ),
            seconds=60,
            what="the thawed worker to finish its stale job",
        )
        await wait_for(lambda: run_settled(svc, run.id), seconds=90, what="the run to settle")
        await wait_for(lambda: _quiet(database_url), seconds=60, what="no job waiting or running")
        fleet.check()
        (run,) = await read_runs(svc, [run.id])
        history = await read_events(svc, run.id)
        (step,) = await read_steps(svc, run.id)

    kinds = Counter(e.event_type for e in history)
    tag = "[protocol-0001/01]"
    commits = {
        "origin": tagged_commits(repos.origin, run.branch_name or "", tag),
        "worktree": tagged_commits(
            protocol_worktree_path(settings.resolved_projects_root, "demo", run.name), "HEAD", tag
        ),
    }
    report(
        "worker_freeze",
        run=run.status.value,
        takeover_seconds=round(taken_over, 1),
        commits=commits["origin"],
        completed_transitions=kinds["step.completed"],
        qa_verdicts=kinds["qa.verdict"],
        executions=sum(
            1 for e in history if e.event_type == "agent.started" and e.payload["stage"] == "execution"
        ),
        retries=kinds["job.retrying"],
    )
    assert second.owner != first.owner
    done = (run.status.value, step.status.value) == ("completed", "completed")
    unharmed(done, f"the run is {run.status.value}, its step {step.status.value}: {run.last_error}")
    unharmed(commits == {"origin": 1, "worktree": 1}, f"the step's commits: {commits}")
    once = (kinds["step.committed"], kinds["step.completed"], kinds["qa.verdict"])
    unharmed(once == (1, 1, 1), f"committed, completed, judged: {once} times")


async def _quiet(url: str) -> bool:
    waiting = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    return await probe_value(url, waiting) == 0


@pytest.mark.parametrize("process", ["worker", "serve"])
async def test_a_worker_pruned_while_frozen_works_again_when_thawed(process, database_url, tmp_path, fleets):
    """Frozen past the stall window, a process's Procrastinate workers (its job worker and its duties
    worker) have their rows pruned by another process. Thawed, each names its vanished row when it
    takes its next job (a foreign key violation) and Procrastinate stops it; it must be started again,
    in `tasksgodzilla worker` and in the worker `tasksgodzilla serve` runs alike."""
    repos = make_repos(tmp_path)
    settings = fault_settings(tmp_path)
    env = fault_environment(settings, database_url)
    fleet: Fleet = fleets(env)
    frozen = fleet.worker("w1") if process == "worker" else fleet.server(free_port(), "api")
    other = fleet.worker("w2")
    per_process = len(QUEUES)
    await wait_for(
        lambda: _workers(database_url, 2 * per_process), seconds=60, what="both processes' workers"
    )
    frozen.signal(signal.SIGSTOP)
    await wait_for(lambda: _workers(database_url, per_process), seconds=60, what="the frozen workers pruned")
    other.signal(signal.SIGTERM)
    await wait_for(lambda: not other.alive(), seconds=60, what="the other worker to stop")
    frozen.signal(signal.SIGCONT)
    async with open_runtime(settings, database_url, environ=env) as (_, svc):
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))

        async def set_up() -> bool:
            fleet.check()
            return await project_ready(svc, project.id)

        await wait_for(set_up, seconds=60, what=f"the thawed {process} to set the project up")
    restarts = frozen.log.read_text().count("starting it again")
    report(f"{process}_pruned_while_frozen", restarts=restarts, alive=frozen.alive())
    assert restarts >= 1, "no Procrastinate worker ever stopped: the scenario did not happen"


async def _workers(url: str, count: int) -> bool:
    return await probe_value(url, "SELECT count(*) FROM procrastinate_workers") == count
