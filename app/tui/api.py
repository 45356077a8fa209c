"""What the TUI reads from the service and asks of it, through the HTTP API client only: records
parsed back into the domain's models, so the actions offered follow the services' own rules
(app/domain/actions.py), and the server still has the last word on each."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.api_client import ApiClient, StreamedEvent
from app.domain.actions import RunAction, StepAction, allowed_run_actions, allowed_step_actions
from app.domain.records import ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus
from app.domain.totals import (
    ProjectUsage,
    ProtocolUsage,
    Totals,
    UsageGroup,
)

HISTORY_KEPT = 200


@dataclass(frozen=True)
class RunView:
    """A protocol run as the run screen shows it: the run, its steps in order, and their usage."""

    run: ProtocolRun
    steps: list[StepRun]
    usage: ProtocolUsage  # planning, execution and QA together, and per stage
    by_step: dict[int, Totals] = field(default_factory=dict)

    def run_actions(self) -> list[RunAction]:
        return allowed_run_actions(self.run.status, self.steps, has_branch=bool(self.run.branch_name))

    def step_actions(self, step: StepRun) -> list[StepAction]:
        return allowed_step_actions(step, self.run.status, self.steps)


class TuiApi:
    """The calls the screens make; every refusal comes back as the server's error class."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def projects(self) -> list[dict[str, Any]]:
        return [project async for project in self.client.pages("/projects")]

    async def runs(self, project_id: int, statuses: Sequence[ProtocolStatus] = ()) -> list[ProtocolRun]:
        pages = self.client.pages(f"/projects/{project_id}/protocols", status=[str(s) for s in statuses])
        return [ProtocolRun.model_validate(run) async for run in pages]

    async def run_view(self, run_id: int) -> RunView:
        run, page, usage = await asyncio.gather(
            self.client.get(f"/protocols/{run_id}"),
            self.client.get(f"/protocols/{run_id}/steps"),
            self.client.get(f"/protocols/{run_id}/usage"),
        )
        steps = sorted((StepRun.model_validate(s) for s in page["items"]), key=lambda s: s.step_index)
        totals = ProtocolUsage.model_validate(usage)
        by_step = {step.id: totals.by_step.get(step.id, Totals()) for step in steps}
        return RunView(ProtocolRun.model_validate(run), steps, totals, by_step)

    async def project_usage(self, project_id: int, group: UsageGroup) -> ProjectUsage:
        """The project's tokens and cost, by UTC month or day, engine or model."""
        return ProjectUsage.model_validate(
            await self.client.get(f"/projects/{project_id}/usage", group=group)
        )

    async def history(self, run_id: int) -> tuple[list[dict[str, Any]], str | None]:
        """The run's latest events, oldest first, and the cursor after the last one (to follow on)."""
        kept: deque[dict[str, Any]] = deque(maxlen=HISTORY_KEPT)
        cursor: str | None = None
        while True:
            page = await self.client.get(
                f"/protocols/{run_id}/events", limit=500, **({"cursor": cursor} if cursor else {})
            )
            kept.extend(page["items"])
            cursor = page.get("next_cursor") or cursor
            if not page["items"]:
                return list(kept), cursor

    def follow(self, run_id: int, after: str | None) -> AsyncIterator[StreamedEvent]:
        return self.client.events(after=after, protocol_id=run_id)

    async def run_action(self, run_id: int, action: RunAction) -> dict[str, Any]:
        """The run (or the step queued) as the server answered."""
        return await self.client.post(f"/protocols/{run_id}/actions/{action}")

    async def step_action(self, step_id: int, action: StepAction, note: str = "") -> dict[str, Any]:
        body = {"note": note} if action in (StepAction.RETRY, StepAction.APPROVE) else None
        return await self.client.post(f"/steps/{step_id}/actions/{action}", body)
