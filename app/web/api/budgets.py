"""Budget raises: an operator lifts one budget of a project, a protocol run or a step (audited)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from app.domain.scopes import tenant
from app.services import budgets
from app.web.api.common import services
from app.web.api.models import Strict
from app.web.api.registry import Api

api = Api()
ERRORS = (404, 422)
Amount = Field(
    gt=0, le=1e12, description="Tokens, or US dollars for `project`, `protocol_cost`, `month_cost`"
)


class ProjectRaise(Strict):
    scope: Literal["project", "month", "month_cost"] = Field(
        description="`project`: lifetime USD; `month`, `month_cost`: this calendar month's tokens, USD"
    )
    amount: float = Amount


class ProtocolRaise(Strict):
    scope: Literal["protocol", "protocol_cost"] = Field(description="The run's tokens, or its USD")
    amount: float = Amount


class StepRaise(Strict):
    scope: Literal["step"] = "step"
    amount: float = Amount


class BudgetRaise(BaseModel):
    project_id: int
    protocol_run_id: int | None
    step_run_id: int | None
    scope: str
    amount: float
    by: str
    month: str | None = Field(description="`YYYY-MM` (UTC) a monthly raise counts in")


@api.route(
    "POST",
    "/projects/{project_id}/budget/raise",
    summary="Lift one of the project's budgets (lifetime USD, this month's tokens or USD)",
    tag="budgets",
    scope=tenant(),
    body=ProjectRaise,
    response=BudgetRaise,
    status=201,
    errors=ERRORS,
)
async def raise_project(request: web.Request, project_id: int, body: ProjectRaise) -> BudgetRaise:
    raised = await budgets.raise_budget(services(request), project_id, body.scope, body.amount, by="api")
    return BudgetRaise.model_validate(raised)


@api.route(
    "POST",
    "/protocols/{protocol_id}/budget/raise",
    summary="Lift one of a protocol run's budgets (its tokens or USD)",
    tag="budgets",
    scope=tenant(),
    body=ProtocolRaise,
    response=BudgetRaise,
    status=201,
    errors=ERRORS,
)
async def raise_protocol(request: web.Request, protocol_id: int, body: ProtocolRaise) -> BudgetRaise:
    raised = await budgets.raise_budget(
        services(request), None, body.scope, body.amount, by="api", protocol_run_id=protocol_id
    )
    return BudgetRaise.model_validate(raised)


@api.route(
    "POST",
    "/steps/{step_id}/budget/raise",
    summary="Lift a step's token budget",
    tag="budgets",
    scope=tenant(),
    body=StepRaise,
    response=BudgetRaise,
    status=201,
    errors=ERRORS,
)
async def raise_step(request: web.Request, step_id: int, body: StepRaise) -> BudgetRaise:
    raised = await budgets.raise_budget(
        services(request), None, body.scope, body.amount, by="api", step_run_id=step_id
    )
    return BudgetRaise.model_validate(raised)
