"""Two agents of one project started at once cannot both spend the one remaining budget: the check and
the start are one transaction under the project's budget lock, and a run still running counts at its
stage's estimate."""

from __future__ import annotations

import asyncio

from app.config import Settings
from app.domain.agents import AgentRequest, AgentResult
from app.domain.records import AgentRunStatus, Stage
from app.domain.selection import EngineChoice
from app.domain.usage import TokenUsage
from app.errors import BudgetExceededError
from app.services import agents
from app.services.context import build_services
from app.store import agent_runs, events
from app.store import projects as project_store
from tests.support.workflow import NoQueue, wait_for


class _HeldEngine:
    """Answers once released: the first agent run is still running when the second is checked."""

    name = "command"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def run(self, request: AgentRequest) -> AgentResult:
        self.started += 1
        await self.release.wait()
        usage = TokenUsage(input_tokens=100, output_tokens=20)
        return AgentResult(
            engine="command", model=None, status=AgentRunStatus.SUCCEEDED, exit_code=0, usage=usage
        )


async def test_two_agents_started_at_once_do_not_both_pass_the_monthly_budget(database, tmp_path):
    engine = _HeldEngine()
    settings = Settings(
        data_dir=tmp_path / "data", max_tokens_per_project_month=1500, budget_estimate_floor_tokens=1000
    )
    svc = build_services(settings, database, NoQueue(), environ={}, engines={"command": engine})
    async with database.transaction() as conn:
        project_id = (await project_store.create(conn, name="shop", local_path=str(tmp_path))).id

    def start(stage: Stage) -> asyncio.Task:
        return asyncio.create_task(
            agents.run_agent(
                svc,
                agents.Subject(project_id),
                stage=stage,
                choice=EngineChoice("command", None),
                prompt="go",
                prompt_version="test",
                workdir=tmp_path,
            )
        )

    # Each alone fits (1000 expected of 1500); both together do not.
    tasks = [start(Stage.DISCOVERY), start(Stage.PLANNING)]
    await wait_for(
        lambda: engine.started + sum(task.done() for task in tasks) >= 2, what="both agents checked"
    )
    engine.release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
    assert engine.started == 1, outcomes
    assert len(refused) == 1, outcomes
    assert "month budget cannot cover" in refused[0].message
    async with database.transaction() as conn:
        runs = await agent_runs.list_for_project(conn, project_id)
        exceeded = await events.list_page(conn, project_id=project_id, event_types=["budget.exceeded"])
    assert [r.status for r in runs] == [AgentRunStatus.SUCCEEDED]
    assert [e.payload["scope"] for e in exceeded] == ["month"]
    assert exceeded[0].payload["expected"] == 2000, "its own estimate and the running one's"
