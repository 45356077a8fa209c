"""The TUI against a live server: the real application on a real socket with a token, and runs seeded
through the store in the statuses each action needs (no worker runs: queued work stays queued)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from app.api_client import ApiClient
from app.config import Settings
from app.domain.records import AgentRunStatus, Project, ProjectStatus, ProtocolRun, Stage, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services import planning
from app.services.context import Services
from app.store import agent_runs, projects, protocols, steps
from app.store.transitions import move_protocol, move_step
from app.tui.api import TuiApi
from app.tui.app import TasksGodzillaTui
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support import seed

TOKEN = "tui-token-0123456789"


@dataclass
class Seeded:
    svc: Services
    project: Project
    pending: ProtocolRun  # no steps yet: start, cancel
    running: ProtocolRun  # steps 1 and 2 pending, on a branch: next step, open PR, pause, resume
    reviewing: ProtocolRun  # step 1 waiting for QA, step 2 failed: run QA, approve, retry
    steps: dict[str, StepRun]


@pytest.fixture
async def server(database_url, aiohttp_server, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_server(create_app(settings, database_url))


@pytest.fixture
async def seeded(server) -> Seeded:
    svc = server.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        project = await projects.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    pending = await planning.create_protocol(svc, project.id, title="Plan me")
    running = await planning.create_protocol(svc, project.id, title="Build it")
    reviewing = await planning.create_protocol(svc, project.id, title="Check it")
    made: dict[str, StepRun] = {}
    async with svc.database.transaction() as conn:
        for run, prefix in ((running, "build"), (reviewing, "check")):
            for status in (P.PLANNING, P.PLANNED, P.RUNNING):
                run = await move_protocol(conn, run.id, status, expected_version=run.version)
            await protocols.update_fields(
                conn, run.id, expected_version=run.version, branch_name=f"{run.name}-branch"
            )
            first, second = await steps.create_many(
                conn, run.id, [
                    {"step_index": 1, "name": f"{prefix} one", "step_file": "01.md"},
                    {"step_index": 2, "name": f"{prefix} two", "step_file": "02.md"},
                ],
            )  # fmt: skip
            made[f"{prefix}1"], made[f"{prefix}2"] = first, second
        for key, path in (("check1", (S.RUNNING, S.NEEDS_QA)), ("check2", (S.RUNNING, S.FAILED))):
            step = made[key]
            for status in path:
                step = await move_step(conn, step.id, status, expected_version=step.version)
            made[key] = step
        await seed.agent_run(
            conn, reviewing, made["check1"], status=AgentRunStatus.SUCCEEDED,
            input_tokens=1200, output_tokens=340, cost_usd=Decimal("0.0425"),
        )  # fmt: skip
        await seed.agent_run(  # a model without a price: its cost is unknown, not $0
            conn, reviewing, made["check2"], status=AgentRunStatus.FAILED, input_tokens=50, output_tokens=5
        )
        planned = await agent_runs.start(  # planning spends too, on no step
            conn, project_id=project.id, protocol_run_id=reviewing.id, step_run_id=None,
            stage=Stage.PLANNING, engine="command", model=None, prompt_version=None,
        )  # fmt: skip
        await agent_runs.finish(
            conn, planned.id, status=AgentRunStatus.SUCCEEDED, input_tokens=500, output_tokens=100,
            cost_usd=Decimal("0.01"),
        )  # fmt: skip
    return Seeded(svc, project, pending, running, reviewing, made)


@pytest.fixture
async def api(server):
    """A client of the same server, for the tests' own looks at what reached it."""
    async with ApiClient(str(server.make_url("/")), TOKEN) as client:
        yield client


@pytest.fixture
async def tui(server, api):
    """A factory: the TUI on the live server (with the token, unless told another), to run headless."""
    async with ApiClient(str(server.make_url("/")), "wrong-token-0123456789") as wrong:

        def make(*, token_ok: bool = True) -> TasksGodzillaTui:
            app = TasksGodzillaTui(TuiApi(api if token_ok else wrong))
            app.ERROR_SECONDS = 600  # a slow machine must still find the refusal on screen
            return app

        yield make
