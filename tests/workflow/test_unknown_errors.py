"""A bug (an exception we do not know) in a job gives up at once: never retried like a crash would be."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from app.domain.agents import AgentRequest, AgentResult
from app.domain.workflow import JobName
from app.engines.probe import EngineCheck
from app.services import planning, projects
from app.store import events, protocols
from tests.support.workflow import make_repos, project_ready, running_worker, wait_for, workflow_settings


class BuggyEngine:
    """An engine with a bug in it: every run raises KeyError (a paid agent would run each retry)."""

    name = "command"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, request: AgentRequest) -> AgentResult:
        self.runs += 1
        raise KeyError("usage")

    async def check(self, workdir: Path | None = None) -> EngineCheck:
        return EngineCheck("ok", "(in process)", version="buggy")


def _outcomes(caplog, task: str) -> list[logging.LogRecord]:
    """Procrastinate's line on how each `task` job ended."""
    return [r for r in caplog.records if r.name == "procrastinate.worker" and f"Job {task}[" in r.getMessage()
            and getattr(r, "action", "").startswith("job_")]  # fmt: skip


async def test_a_bug_fails_the_job_at_once_with_its_reason(database_url, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="procrastinate.worker")
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, job_max_attempts=3)
    engine = BuggyEngine()
    async with running_worker(
        settings, database_url, environ=dict(os.environ), engines={"command": engine}
    ) as svc:
        project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup by the worker")
        run = await planning.create_protocol(svc, project.id, title="Plan with a bug")
        await planning.start_protocol(svc, run.id)

        async def settled():
            async with svc.database.transaction() as conn:
                current = await protocols.get(conn, run.id)
                kinds = [
                    e.event_type for e in await events.list_page(conn, protocol_run_id=run.id, limit=500)
                ]
            return (current, kinds) if current.status.value in ("failed", "blocked") else None

        current, kinds = await wait_for(settled, seconds=60, what="planning to give up")

        async def outcome_logged():
            return _outcomes(caplog, JobName.PLAN_PROTOCOL.value)

        # The job returned after recording its failure: its line says it gave up, not "Success".
        [outcome] = await wait_for(outcome_logged, seconds=30, what="the planning job's outcome line")
        async with svc.database.transaction() as conn:
            gave_up = await events.list_page(conn, protocol_run_id=run.id, event_types=["job.gave_up"])
    assert engine.runs == 1, "the bug was not retried"
    assert "job.retrying" not in kinds
    assert current.status.value == "failed", "a bug is terminal"
    assert current.last_error == "KeyError: 'usage'"
    assert [(e.payload["attempt"], e.payload["terminal"]) for e in gave_up] == [(1, True)]
    assert outcome.levelno == logging.WARNING
    assert "gave up" in outcome.getMessage()
    assert "Success" not in outcome.getMessage()
    assert "KeyError: 'usage'" in outcome.getMessage()
