"""Token and cost ceilings, checked before an agent starts."""

from __future__ import annotations

from app.config import BudgetMode
from app.domain.records import Project, ProtocolRun, StepRun
from app.errors import BudgetExceededError
from app.services.context import Services
from app.services.events import record
from app.store import agent_runs


async def check_budget(
    svc: Services, project: Project, run: ProtocolRun, step: StepRun | None = None
) -> None:
    """Raise BudgetExceededError (enforce) or record a warning (warn) when a ceiling is reached."""
    settings = svc.settings
    async with svc.database.transaction() as conn:
        breaches: list[tuple[str, float, float]] = []
        if settings.max_tokens_per_protocol is not None:
            used = await agent_runs.tokens_used(conn, protocol_run_id=run.id)
            if used >= settings.max_tokens_per_protocol:
                breaches.append(("protocol", settings.max_tokens_per_protocol, used))
        if step is not None and settings.max_tokens_per_step is not None:
            used = await agent_runs.tokens_used(conn, step_run_id=step.id)
            if used >= settings.max_tokens_per_step:
                breaches.append(("step", settings.max_tokens_per_step, used))
        if settings.max_cost_per_project_usd is not None:
            spent = await agent_runs.cost_spent(conn, project.id)
            if spent >= settings.max_cost_per_project_usd:
                breaches.append(("project", settings.max_cost_per_project_usd, float(spent)))
        for scope, limit, amount in breaches:
            await record(
                conn,
                project.id,
                "budget.exceeded",
                f"{scope} budget reached: {amount} of {limit}",
                run=run,
                step=step,
                scope=scope,
                limit=limit,
                used=amount,
                mode=str(settings.budget_mode),
            )
    if breaches and settings.budget_mode is BudgetMode.ENFORCE:
        scope, limit, amount = breaches[0]
        raise BudgetExceededError(f"the {scope} budget is spent ({amount} of {limit})", scope=scope)
