"""Token and cost ceilings, checked before an execution agent starts.

Each ceiling is the tighter of the service's setting and the run's policy (`limits` of the policy the
run was planned under, app.services.policy.policy_for_run); the `budget.exceeded` event names which
one set it. The project's spending ceiling is a setting only; the run's spending ceiling
(`limits.usd_per_protocol`) is the policy's only.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import BudgetMode, Settings, env_name
from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.usage import Ceiling, tighter
from app.errors import BudgetExceededError
from app.services.context import Services
from app.services.events import record
from app.services.policy import RunPolicy, policy_for_run
from app.store import agent_runs


def ceilings(settings: Settings, policy: RunPolicy, *, with_step: bool) -> list[Ceiling]:
    """The ceilings that apply to a run (and to its step when `with_step`), each with its source."""
    limits = policy.policy.get("limits") or {}
    pack = f"policy {policy.pack_key}@{policy.pack_version}"

    def setting(value: float | None, name: str) -> tuple[float | None, str]:
        return value, f"setting {env_name(name)}"

    def of_policy(key: str) -> tuple[float | None, str]:
        return limits.get(key), f"{pack} limits.{key}"

    per_run = setting(settings.max_tokens_per_protocol, "max_tokens_per_protocol")
    per_step = setting(settings.max_tokens_per_step, "max_tokens_per_step")
    per_project = setting(settings.max_cost_per_project_usd, "max_cost_per_project_usd")
    found = [
        tighter("protocol", per_run, of_policy("tokens_per_protocol")),
        tighter("step", per_step, of_policy("tokens_per_step")) if with_step else None,
        tighter("project", per_project, (None, "")),
        tighter("protocol_cost", (None, ""), of_policy("usd_per_protocol")),
    ]
    return [ceiling for ceiling in found if ceiling is not None]


async def _used(
    conn: AsyncConnection, ceiling: Ceiling, project: Project, run: ProtocolRun, step: StepRun | None
) -> float:
    if ceiling.scope == "protocol":
        return await agent_runs.tokens_used(conn, protocol_run_id=run.id)
    if ceiling.scope == "step":
        assert step is not None
        return await agent_runs.tokens_used(conn, step_run_id=step.id)
    spent: Decimal = (
        await agent_runs.cost_spent(conn, project.id)
        if ceiling.scope == "project"
        else await agent_runs.run_cost(conn, run.id)
    )
    return float(spent)


async def check_budget(
    svc: Services, project: Project, run: ProtocolRun, step: StepRun | None = None
) -> None:
    """Raise BudgetExceededError (enforce) or record a warning (warn) when a ceiling is reached."""
    settings = svc.settings
    applying = ceilings(settings, await policy_for_run(svc, run.id), with_step=step is not None)
    breaches: list[tuple[Ceiling, float]] = []
    async with svc.database.transaction() as conn:
        for ceiling in applying:
            used = await _used(conn, ceiling, project, run, step)
            if used >= ceiling.limit:
                breaches.append((ceiling, used))
        for ceiling, used in breaches:
            await record(
                conn,
                project.id,
                "budget.exceeded",
                f"{ceiling.scope} budget reached: {used} of {ceiling.limit} ({ceiling.source})",
                run=run,
                step=step,
                scope=ceiling.scope,
                limit=ceiling.limit,
                used=used,
                source=ceiling.source,
                mode=str(settings.budget_mode),
            )
    if breaches and settings.budget_mode is BudgetMode.ENFORCE:
        ceiling, used = breaches[0]
        raise BudgetExceededError(
            f"the {ceiling.scope} budget is spent ({used} of {ceiling.limit}, set by {ceiling.source})",
            scope=ceiling.scope,
            source=ceiling.source,
        )
