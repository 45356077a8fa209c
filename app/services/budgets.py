"""Token and cost ceilings, checked before every agent run of every stage (app.services.agents.run_agent).

Each ceiling is the tighter of the service's setting and the run's policy (`limits` of the policy the
run was planned under, app.services.policy.policy_for_run); the `budget.exceeded` event names which
one set it. The project's ceilings (lifetime dollars, monthly tokens and dollars) are settings only;
the run's spending ceiling (`limits.usd_per_protocol`) is the policy's only. An agent run is refused
when a budget is spent or cannot cover what the stage is expected to use (app.domain.budgets); an
operator's raise (`budget.raised`) lifts one budget by its amount. A check and the start of the run
it lets through are one transaction under the project's advisory lock, and runs still running count
at their stage's estimate: two agents started at once cannot both spend the one remaining budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import BudgetMode, Settings, env_name
from app.domain.budgets import (
    ESTIMATE_RUNS,
    RUN_SCOPES,
    USD_SCOPES,
    Headroom,
    Spend,
    Standing,
    expected_spend,
    first_refusal,
    headroom,
    month_key,
    month_start,
)
from app.domain.events import NewEvent
from app.domain.records import Stage
from app.domain.usage import Ceiling, TokenUsage, cost_of, tighter
from app.errors import BudgetExceededError, InvalidInputError
from app.services.context import Services
from app.services.policy import RunPolicy, policy_for_project, policy_for_run
from app.store import agent_runs, budget_raises, events, projects, protocols, steps

T = TypeVar("T")


def ceilings(
    settings: Settings, policy: RunPolicy, *, with_run: bool = True, with_step: bool
) -> list[Ceiling]:
    """The ceilings that apply to an agent run (of a run when `with_run`, of its step when
    `with_step`), each with its source."""
    limits = policy.policy.get("limits") or {}
    pack = f"policy {policy.pack_key}@{policy.pack_version}"
    none: tuple[float | None, str] = (None, "")

    def setting(value: float | None, name: str) -> tuple[float | None, str]:
        return value, f"setting {env_name(name)}"

    def of_policy(key: str) -> tuple[float | None, str]:
        return limits.get(key), f"{pack} limits.{key}"

    per_run = setting(settings.max_tokens_per_protocol, "max_tokens_per_protocol")
    per_step = setting(settings.max_tokens_per_step, "max_tokens_per_step")
    per_project = setting(settings.max_cost_per_project_usd, "max_cost_per_project_usd")
    month = setting(settings.max_tokens_per_project_month, "max_tokens_per_project_month")
    month_cost = setting(settings.max_cost_per_project_month_usd, "max_cost_per_project_month_usd")
    found = [
        tighter("protocol", per_run, of_policy("tokens_per_protocol")) if with_run else None,
        tighter("step", per_step, of_policy("tokens_per_step")) if with_step else None,
        tighter("project", per_project, none),
        tighter("protocol_cost", none, of_policy("usd_per_protocol")) if with_run else None,
        tighter("month", month, none),
        tighter("month_cost", month_cost, none),
    ]
    return [ceiling for ceiling in found if ceiling is not None]


class _Subject:
    """Whose agent run is checked, and the spends its budgets read (each read once)."""

    def __init__(
        self, conn: AsyncConnection, project_id: int, run_id: int | None, step_id: int | None
    ) -> None:
        self.conn, self.project_id, self.run_id, self.step_id = conn, project_id, run_id, step_id
        self.now = datetime.now(UTC)
        self._spends: dict[str, Spend] = {}

    async def spend(self, scope: str) -> Spend:
        key = {"protocol_cost": "protocol", "month_cost": "month"}.get(scope, scope)
        if key not in self._spends:
            conn, project = self.conn, self.project_id
            if key == "step":
                found = await agent_runs.spend(conn, project, step_run_id=self.step_id)
            elif key == "protocol":
                found = await agent_runs.spend(conn, project, protocol_run_id=self.run_id)
            elif key == "month":
                found = await agent_runs.spend(conn, project, since=month_start(self.now))
            else:
                found = await agent_runs.spend(conn, project)
            self._spends[key] = found
        return self._spends[key]

    async def raised(self, scope: str) -> float:
        return await budget_raises.raised(
            self.conn,
            self.project_id,
            scope,
            protocol_run_id=self.run_id if scope in RUN_SCOPES else None,
            step_run_id=self.step_id if scope == "step" else None,
            month=month_key(self.now) if scope.startswith("month") else None,
        )


FALLBACK = "unpriced_usd_per_1k_tokens"


def _fallback(settings: Settings) -> Decimal | None:
    value = settings.unpriced_usd_per_1k_tokens
    return None if value is None else Decimal(str(value))


def _floor_usd(settings: Settings, model: str | None) -> Decimal:
    """What the floor's tokens cost at the model's price (as input), or the fallback price, or nothing."""
    floor = settings.budget_estimate_floor_tokens
    priced = cost_of(TokenUsage(input_tokens=floor), settings.model_prices.get(model or ""))
    if priced is not None:
        return priced
    return Spend(unpriced_tokens=floor).usd(_fallback(settings))


async def check_budget(
    svc: Services,
    stage: Stage,
    model: str | None,
    project_id: int,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
) -> Headroom:
    """Before an agent run starts: raise BudgetExceededError (enforce) or record a warning (warn) when a
    budget is spent or cannot cover the stage's expected use; `off` checks nothing. Enforced, what the
    tightest USD and token budgets have left, for an engine that can be stopped there."""
    found, _ = await start_within_budget(
        svc, stage, model, project_id, protocol_run_id, step_run_id, start=_nothing
    )
    return found


async def _nothing(conn: AsyncConnection) -> None:
    return None


async def start_within_budget(
    svc: Services,
    stage: Stage,
    model: str | None,
    project_id: int,
    protocol_run_id: int | None,
    step_run_id: int | None,
    *,
    start: Callable[[AsyncConnection], Awaitable[T]],
    prepare: Callable[[AsyncConnection], Awaitable[object]] | None = None,
) -> tuple[Headroom, T]:
    """check_budget, then `start` (recording the agent run) in the same transaction, under the
    project's budget lock: two agent runs started at once are checked one after the other, and the
    second counts the first, still running, at its stage's estimate (a reservation). `prepare` runs
    first in that transaction, before anything is counted (closing runs that are over)."""
    settings = svc.settings
    applying: list[Ceiling] = []
    if settings.budget_mode is not BudgetMode.OFF:
        policy = (
            await policy_for_run(svc, protocol_run_id)
            if protocol_run_id is not None
            else await policy_for_project(svc, project_id)
        )
        applying = ceilings(
            settings, policy, with_run=protocol_run_id is not None, with_step=step_run_id is not None
        )
    enforced = settings.budget_mode is BudgetMode.ENFORCE
    async with svc.database.transaction() as conn:
        if prepare is not None:
            await prepare(conn)
        standings: list[Standing] = []
        if applying:
            await agent_runs.lock_budget(conn, project_id)
            subject = _Subject(conn, project_id, protocol_run_id, step_run_id)
            standings, unpriced = await _standings(subject, settings, applying, stage, model)
            if unpriced:
                await _warn_unpriced(conn, project_id, protocol_run_id, model)
            for standing in standings:
                if standing.refuses:
                    await _record_refusal(conn, subject, standing, stage, settings.budget_mode)
        refusal = first_refusal(standings) if enforced else None
        if refusal is None:  # committed with the run it starts
            return (headroom(standings) if enforced and standings else Headroom()), await start(conn)
    # The refusal's events are committed; the run never started.
    raise BudgetExceededError(
        _reason(refusal, stage), scope=refusal.ceiling.scope, source=refusal.ceiling.source
    )


async def _standings(
    subject: _Subject, settings: Settings, applying: list[Ceiling], stage: Stage, model: str | None
) -> tuple[list[Standing], bool]:
    """Each budget's standing, and whether a USD budget leaves unpriced runs uncounted."""
    fallback = _fallback(settings)
    recent = await agent_runs.recent_spends(subject.conn, subject.project_id, stage, limit=ESTIMATE_RUNS)
    tokens, dollars = expected_spend(
        recent,
        floor_tokens=settings.budget_estimate_floor_tokens,
        floor_usd=_floor_usd(settings, model),
        unpriced_per_1k=fallback,
    )
    standings, unpriced = [], False
    for ceiling in applying:
        spent = await subject.spend(ceiling.scope)
        usd = ceiling.scope in USD_SCOPES
        used = float(spent.usd(fallback)) if usd else float(spent.tokens)
        if usd and fallback is None:
            unpriced |= spent.unpriced_tokens > 0 or (model or "") not in settings.model_prices
        # Runs still running in this scope will spend too: each reserves the stage's estimate.
        expected = (float(dollars) if usd else tokens) * (1 + spent.running)
        standings.append(Standing(ceiling, await subject.raised(ceiling.scope), used, expected))
    return standings, unpriced


def _amount(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 6)


def _reason(standing: Standing, stage: Stage) -> str:
    ceiling = standing.ceiling
    used, limit = _amount(standing.used), _amount(standing.limit)
    if standing.used >= standing.limit:
        return f"the {ceiling.scope} budget is spent ({used} of {limit}, set by {ceiling.source})"
    return (
        f"the {ceiling.scope} budget cannot cover the next {stage} agent run ({used} of {limit} used, "
        f"{_amount(standing.expected)} expected, set by {ceiling.source})"
    )


async def _record_refusal(
    conn: AsyncConnection, subject: _Subject, standing: Standing, stage: Stage, mode: BudgetMode
) -> None:
    ceiling = standing.ceiling
    await events.append(
        conn,
        NewEvent(
            project_id=subject.project_id,
            protocol_run_id=subject.run_id,
            step_run_id=subject.step_id,
            event_type="budget.exceeded",
            message=_reason(standing, stage),
            payload={
                "scope": ceiling.scope,
                "limit": _amount(standing.limit),
                "used": _amount(standing.used),
                "expected": _amount(standing.expected),
                "raised": _amount(standing.raised),
                "mode": str(mode),
                "source": ceiling.source,
                "stage": str(stage),
            },
        ),
    )


async def _warn_unpriced(
    conn: AsyncConnection, project_id: int, run_id: int | None, model: str | None
) -> None:
    """Say once per protocol run (outside one: once per project) that unpriced runs count nothing."""
    earlier = await events.recent(
        conn, project_id=project_id, protocol_run_id=run_id, type_prefix="budget.unpriced", limit=1
    )
    if earlier:
        return
    await events.append(
        conn,
        NewEvent(
            project_id=project_id,
            protocol_run_id=run_id,
            event_type="budget.unpriced",
            message=f"agent runs of a model without a price ({model or 'the engine default'}) count "
            f"nothing against USD budgets: set {env_name('model_prices')} or {env_name(FALLBACK)}",
            payload={"model": model},
        ),
    )


# Which budgets a raise may lift at each level: the project's, one protocol run's, one step's.
RAISABLE = {
    "project": ("project", "month", "month_cost"),
    "protocol": ("protocol", "protocol_cost"),
    "step": ("step",),
}


async def raise_budget(
    svc: Services,
    project_id: int | None,
    scope: str,
    amount: float,
    *,
    by: str,
    protocol_run_id: int | None = None,
    step_run_id: int | None = None,
) -> dict[str, object]:
    """Lift one budget by `amount` (tokens, or dollars for `*_cost` and `project`) for good: the project's,
    this month's, a run's or a step's (`project_id` None: the run's or step's project). Recorded as
    `budget.raised`; every later check of that budget counts it."""
    level = "step" if step_run_id is not None else "protocol" if protocol_run_id is not None else "project"
    if scope not in RAISABLE[level]:
        allowed = ", ".join(RAISABLE[level])
        raise InvalidInputError(f"a {level}'s budget raise names scope {allowed}", field="scope")
    async with svc.database.transaction() as conn:
        if step_run_id is not None:
            protocol_run_id = (await steps.get(conn, step_run_id)).protocol_run_id
        if protocol_run_id is not None:
            project_id = (await protocols.get(conn, protocol_run_id)).project_id
        assert project_id is not None, "a raise names its project, run or step"
        await projects.get(conn, project_id)
        month = month_key(datetime.now(UTC)) if scope.startswith("month") else None
        payload: dict[str, object] = {"scope": scope, "amount": amount, "by": by, "month": month}
        unit = "USD" if scope in USD_SCOPES else "tokens"
        await events.append(
            conn,
            NewEvent(
                project_id=project_id,
                protocol_run_id=protocol_run_id,
                step_run_id=step_run_id,
                event_type=budget_raises.RAISED,
                message=f"{scope} budget raised by {_amount(amount)} {unit} by {by}",
                payload=payload,
            ),
        )
    return {
        "project_id": project_id,
        "protocol_run_id": protocol_run_id,
        "step_run_id": step_run_id,
        **payload,
    }
