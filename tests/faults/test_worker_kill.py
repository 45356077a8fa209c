"""`kill -9` of a worker in the middle of a step, ten times, with two `tasksgodzilla worker` processes.

Five protocol runs of two steps each, on a project with a (fake) GitHub. The scripted agent hangs in
the first execution of every step (AGENT_HANG_ONCE), so each of the ten steps is one trial: the test
finds the hung agent, SIGKILLs the worker that started it, and starts a replacement. The other
worker retries the dead worker's job once its heartbeat is older than the stall window.

Every run must complete (its PR merged by webhook), each step with exactly one commit on the remote,
pushed once (the bare remote's reflog counts real ref updates), one PR per run (the fake forge counts
creations), and no agent of a killed worker may outlive the takeover of its step.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from app.domain.ci import Provider
from app.domain.records import ProtocolRun
from app.forges.github import parse_github
from app.jobs.runtime import open_runtime
from app.services import planning, projects, webhooks
from app.services.context import Services
from tests.support.ci_runs import SECRET, payload
from tests.support.fake_forge import GITHUB_TOKEN, FakeForge, running_fake_forge
from tests.support.fault_probes import (
    no_job_doing,
    read_events,
    read_runs,
    read_steps,
)
from tests.support.faults import (
    Fleet,
    fault_environment,
    fault_settings,
    install_ref_log,
    pid_alive,
    pushes,
    report,
    survives,
    tagged_agents,
    tagged_commits,
)
from tests.support.workflow import git, make_repos, project_ready, shared_with_agents, wait_for

RUNS, STEPS = 5, 2
DEADLINE_SECONDS = 240


@dataclass
class Kill:
    step: str  # `<protocol folder>-<NN>`, the hang marker's name
    worker: str
    agent_pid: int
    at: float
    agent_gone_at: float | None = None


async def test_killing_workers_mid_step_loses_and_doubles_nothing(database_url, tmp_path, fleets):
    repos = make_repos(tmp_path)
    install_ref_log(repos.origin)
    hangs = shared_with_agents(tmp_path / "hangs", folder=True)

    def pushed_head(branch: str) -> str | None:
        try:
            return git("--git-dir", str(repos.origin), "rev-parse", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None

    async with running_fake_forge(head_sha=pushed_head) as forge:
        settings = fault_settings(
            tmp_path, github_api_url=forge.url, github_token=GITHUB_TOKEN, github_webhook_secret=SECRET
        )
        env = fault_environment(
            settings, database_url, AGENT_PLAN_STEPS=str(STEPS), AGENT_HANG_ONCE=str(hangs)
        )
        fleet: Fleet = fleets(env)
        fleet.worker("w1")
        fleet.worker("w2")
        kills: list[Kill] = []
        started = time.monotonic()
        async with open_runtime(settings, database_url, environ=env) as (_, svc):
            project = await projects.register_project(
                svc, name="shop", local_path=str(repos.local), ci_provider="github", forge_repo="acme/shop"
            )
            await wait_for(lambda: project_ready(svc, project.id), seconds=60, what="project setup")
            run_ids = []
            for n in range(1, RUNS + 1):
                run = await planning.create_protocol(svc, project.id, title=f"Trial run {n}")
                await planning.start_protocol(svc, run.id)
                run_ids.append(run.id)

            merged: set[int] = set()
            deadline = time.monotonic() + DEADLINE_SECONDS
            while True:
                fleet.check()
                await _kill_workers_of_hung_agents(hangs, fleet, kills)
                for kill in kills:
                    if kill.agent_gone_at is None and not pid_alive(kill.agent_pid):
                        kill.agent_gone_at = time.monotonic()
                runs = await read_runs(svc, run_ids)
                for run in runs:
                    if _awaits_merge(run) and run.id not in merged:
                        await _merge(svc, forge, run)
                        merged.add(run.id)
                if all(r.status.value == "completed" for r in runs) and all(k.agent_gone_at for k in kills):
                    break
                stuck = [r for r in runs if r.status.value in ("blocked", "failed", "cancelled")]
                if stuck or time.monotonic() > deadline:
                    states = {r.name: (r.status.value, r.last_error) for r in runs}
                    logs = "\n".join(f"--- {w.name}\n{w.tail(15)}" for w in fleet.procs)
                    raise AssertionError(f"runs not all completed: {states}; kills {kills}\n{logs}")
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            history = {run.id: await read_events(svc, run.id) for run in runs}
            plans = {run.id: await read_steps(svc, run.id) for run in runs}
        await wait_for(lambda: no_job_doing(database_url), seconds=30, what="no job left doing")

    pr_creations = [c for c in forge.calls("POST") if c.path.endswith("/pulls")]
    problems, doubled = [], Counter[str]()
    for run in runs:
        branch = run.branch_name or ""
        step_shas = [s.commit_sha for s in plans[run.id]]
        for step in plans[run.id]:
            tag = f"[protocol-{run.number:04d}/{step.step_index:02d}]"
            commits = tagged_commits(repos.origin, branch, tag)
            doubled["commits"] += max(0, commits - 1)
            if commits != 1:
                problems.append(f"{branch} step {step.step_index}: {commits} commits")
        moved_to = Counter(pushes(repos.origin, branch))
        doubled["pushes"] += sum(n - 1 for n in moved_to.values())
        if not set(step_shas) <= set(moved_to):
            problems.append(f"{branch}: step commits never pushed: {set(step_shas) - set(moved_to)}")
        said = Counter(e.payload["sha"] for e in history[run.id] if e.event_type == "branch.pushed")
        # Each step's push says so once; open_pr_job pushes the finished branch again (a no-op).
        expected = Counter(step_shas) + Counter([run.head_sha])
        doubled["push events"] += sum((said - expected).values())
        if said != expected:
            problems.append(f"{branch}: branch.pushed per sha {dict(said)}, expected {dict(expected)}")
    orphan_seconds = [k.agent_gone_at - k.at for k in kills if k.agent_gone_at]
    report(
        "worker_kill",
        trials=len(kills),
        runs=len(runs),
        steps=sum(len(p) for p in plans.values()),
        lost=sum(r.status.value != "completed" for r in runs),
        duplicated=sum(doubled.values()),
        pr_creations=len(pr_creations),
        orphan_agent_max_seconds=round(max(orphan_seconds, default=0), 2),
        seconds=round(elapsed, 1),
    )
    assert len(kills) == RUNS * STEPS, [k.step for k in kills]
    assert problems == []
    assert doubled.total() == 0, doubled
    assert len(pr_creations) == RUNS, "one PR per run, none opened twice"
    killed = {k.worker for k in kills}
    assert [a for a in fleet.agents() if a.owner in killed] == [], "agents outlived their worker"


async def test_an_agent_dies_with_its_killed_worker(database_url, tmp_path, fleets):
    repos = make_repos(tmp_path)
    hangs = shared_with_agents(tmp_path / "hangs", folder=True)
    settings = fault_settings(tmp_path)
    env = fault_environment(settings, database_url, AGENT_PLAN_STEPS="1", AGENT_HANG_ONCE=str(hangs))
    fleet: Fleet = fleets(env)
    worker = fleet.worker("w1")
    async with open_runtime(settings, database_url, environ=env) as (_, svc):
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), seconds=60, what="project setup")
        run = await planning.create_protocol(svc, project.id, title="Orphan")
        await planning.start_protocol(svc, run.id)
        # The agent that wrote the hang marker is the one hanging (not one that already ended).
        hung = await wait_for(lambda: list(_hung(hangs).values()), seconds=60, what="the agent to hang")
    (pid,) = hung
    assert pid in {a.pid for a in fleet.agents()}, "the hanging agent is alive"
    worker.signal(signal.SIGKILL)
    await wait_for(lambda: not worker.alive(), seconds=30, what="the worker to die")
    died = time.monotonic()
    try:
        await survives(wait_for(lambda: not pid_alive(pid), seconds=10, what="the orphaned agent to die"))
    finally:
        report(
            "agent_dies_with_worker", orphaned=int(pid_alive(pid)), seconds=round(time.monotonic() - died, 1)
        )


async def _kill_workers_of_hung_agents(hangs: Path, fleet: Fleet, kills: list[Kill]) -> None:
    """SIGKILL the worker of every newly hung agent, and start a replacement so two keep working."""
    done = {k.step for k in kills}
    agents = tagged_agents()
    for step, pid in _hung(hangs).items():
        if step in done or pid not in agents:
            continue  # handled, or not yet visible in /proc
        worker = fleet.named(agents[pid].owner)
        worker.signal(signal.SIGKILL)
        kills.append(Kill(step, worker.name, pid, time.monotonic()))
        await wait_for(lambda w=worker: not w.alive(), seconds=30, what=f"{worker.name} to die")
        fleet.worker(f"w{len(fleet.procs) + 1}")


def _hung(hangs: Path) -> dict[str, int]:
    """The hang markers written so far: step → the pid of the agent hanging in it."""
    marks = {mark.name: mark.read_text() for mark in sorted(hangs.iterdir())}
    return {step: int(text) for step, text in marks.items() if text}  # empty: being written


def _awaits_merge(run: ProtocolRun) -> bool:
    return run.status.value == "running" and run.pr_number is not None and run.published_sha == run.head_sha


async def _merge(svc: Services, forge: FakeForge, run: ProtocolRun) -> None:
    """Merge the run's PR on the forge and deliver GitHub's webhook saying so."""
    assert run.pr_number is not None
    forge.merge("acme/shop", run.pr_number)
    body = payload("github", "pull_request.closed", sha=run.published_sha, branch=run.branch_name)
    body["number"] = body["pull_request"]["number"] = run.pr_number
    await webhooks.receive(
        svc,
        provider=Provider.GITHUB,
        delivery_id=str(uuid.uuid4()),
        event="pull_request",
        signal=parse_github("pull_request", body),
    )
