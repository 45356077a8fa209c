"""Issue intake: labelled issues become runs, reconciled with the issue's state (app.domain.intake).

Deliveries (`issues`, `Issue Hook`) are recorded once under their delivery id in `webhook_deliveries`,
like CI's, and applied in the same transaction: the issue's row is locked, the rules decide, and a new
run is created and started right there. Cancelling stops the run's agent, which is done once the
transaction is committed; a crash in between is repaired by the poll (`poll_issues`), which lists the
labelled open issues through the forge's API and reconciles every issue the project knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import DeliveryOutcome, Provider, serves_repository
from app.domain.intake import (
    DEFAULT_BLOCKED_LABEL,
    Decision,
    IntakeAction,
    IntakeIssue,
    Issue,
    decide,
    has_label,
)
from app.domain.records import Project
from app.errors import ConflictError, IllegalTransitionError, StaleWriteError
from app.logs import get_logger
from app.services import controls
from app.services.context import Services
from app.services.events import record
from app.services.forges import forge_for
from app.services.spawn import spawn_run
from app.services.webhooks import Receipt, Received
from app.store import deliveries, projects, protocols
from app.store import intake as issues

log = get_logger(__name__)
WAITING = "waiting"


@dataclass
class Outcome:
    """What applying an issue did: runs to cancel once committed, and what to say on the delivery."""

    cancel: list[tuple[int, str]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    project_id: int | None = None
    protocol_run_id: int | None = None


async def receive_issue(
    svc: Services, *, provider: Provider, delivery_id: str, event: str, issue: Issue | None, why: str = ""
) -> Received:
    """Record an issue delivery once and apply it (a redelivery changes nothing)."""
    signal = issue.model_dump(mode="json") if issue is not None else {"kind": "ignored", "reason": why}
    async with svc.database.transaction() as conn:
        row_id = await deliveries.record(
            conn, provider=provider, delivery_id=delivery_id, event=event, signal=signal
        )
        if row_id is None:
            existing = await deliveries.find(conn, provider, delivery_id)
            assert existing is not None
            return Received(existing.id, Receipt.DUPLICATE, "this delivery was received before")
        outcome = Outcome()
        if issue is None:
            outcome.said.append(why)
        else:
            owners = [p for p in await projects.forge_candidates(conn, issue.repository)
                      if serves_repository(p, provider, issue.repository) and p.intake_label]  # fmt: skip
            if not owners:
                outcome.said.append(f"no project takes in issues of {provider} repository {issue.repository}")
            for project in owners:
                await _reconcile(conn, svc, project, issue, outcome, via=f"delivery {delivery_id}")
        applied = outcome.project_id is not None
        await deliveries.finish(
            conn,
            row_id,
            DeliveryOutcome.APPLIED if applied else DeliveryOutcome.IGNORED,
            "; ".join(outcome.said),
            project_id=outcome.project_id,
            protocol_run_id=outcome.protocol_run_id,
        )
    await _cancel(svc, outcome)
    return Received(row_id, Receipt.QUEUED if applied else Receipt.IGNORED, "; ".join(outcome.said))


async def _reconcile(
    conn: AsyncConnection, svc: Services, project: Project, issue: Issue, outcome: Outcome, *, via: str
) -> None:
    """Bring one project's record of the issue, and its run, in line with the issue's state."""
    assert project.intake_label is not None
    row = await issues.upsert_locked(conn, project.id, issue)
    run = await protocols.get(conn, row.protocol_run_id) if row.protocol_run_id is not None else None
    decision = decide(
        issue,
        label=project.intake_label,
        blocked_label=project.intake_blocked_label or DEFAULT_BLOCKED_LABEL,
        run_status=run.status if run is not None else None,
        cancelled_by_intake=row.cancelled_by_intake,
    )
    outcome.project_id = project.id
    outcome.said.append(f"{project.name}: {decision.action} ({decision.reason})")
    about: dict[str, Any] = {
        "issue": issue.number,
        "url": issue.url,
        "provider": str(issue.provider),
        "via": via,
    }
    if decision.action is IntakeAction.CREATE:
        created = await spawn_run(
            conn, svc, project.id, title=issue.title, description=issue.body, source="intake", **about
        )
        await issues.update_fields(
            conn, row.id, protocol_run_id=created.id, cancelled_by_intake=False, cancel_reason="", posted=[]
        )
        await record(conn, project.id, "intake.run_created", _said(issue, decision), run=created, **about)
        outcome.protocol_run_id = created.id
    elif decision.action is IntakeAction.CANCEL and run is not None:
        await issues.update_fields(conn, row.id, cancelled_by_intake=True, cancel_reason=decision.reason)
        await record(
            conn,
            project.id,
            "intake.run_cancelled",
            _said(issue, decision),
            run=run,
            reason=decision.reason,
            **about,
        )
        outcome.cancel.append((run.id, decision.reason))
        outcome.protocol_run_id = run.id
    elif decision.action is IntakeAction.WAIT and WAITING not in row.posted:
        # Said once, not at every poll; what was commented for an earlier run stays known.
        await issues.update_fields(conn, row.id, posted=[*row.posted, WAITING])
        await record(
            conn, project.id, "intake.waiting", _said(issue, decision), reason=decision.reason, **about
        )


def _said(issue: Issue, decision: Decision) -> str:
    return f"issue #{issue.number}: {decision.action} ({decision.reason})"


async def _cancel(svc: Services, outcome: Outcome) -> None:
    for run_id, reason in outcome.cancel:
        try:
            await controls.cancel(svc, run_id)
        except (IllegalTransitionError, StaleWriteError, ConflictError) as lost:
            # It finished (or was cancelled) meanwhile: nothing to stop; the poll decides again.
            log.info("intake could not cancel a run", run=run_id, reason=reason, error=str(lost))


async def poll_issues(svc: Services) -> int:
    """The safety net for lost deliveries: for each project taking in issues, list its labelled open
    issues on the forge and reconcile each, and every issue it knows that the list no longer has
    (closed or unlabelled). How many issues it reconciled."""
    async with svc.database.read() as conn:
        taking = await issues.projects_taking_issues(conn)
    done = 0
    for project in taking:
        forge = forge_for(svc, project)
        if forge is None or project.intake_label is None:
            continue
        try:
            listed, complete = await forge.labelled_issues(project.intake_label)
        except Exception:
            log.exception("intake poll could not list issues", project=project.name)
            continue
        finally:
            await forge.close()
        done += await _reconcile_listed(svc, project, listed, complete=complete)
    return done


async def _reconcile_listed(svc: Services, project: Project, listed: list[Issue], *, complete: bool) -> int:
    outcome = Outcome()
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, project.id)
        if not project.intake_label:
            return 0
        known = {row.number: row for row in await issues.list_for_project(conn, project.id)}
        for issue in listed:
            await _reconcile(conn, svc, project, issue, outcome, via="poll")
        if complete:  # an issue the full list lacks is closed or unlabelled now
            seen = {issue.number for issue in listed}
            for number, row in known.items():
                if number not in seen and row.open and has_label(tuple(row.labels), project.intake_label):
                    gone = _gone(row, project.intake_label)
                    await _reconcile(conn, svc, project, gone, outcome, via="poll")
    await _cancel(svc, outcome)
    return len(listed)


def _gone(row: IntakeIssue, label: str) -> Issue:
    """What the poll knows of a known issue missing from the labelled list: no longer labelled."""
    labels = tuple(name for name in row.labels if name.casefold() != label.casefold())
    return Issue(
        provider=row.provider,
        repository="",
        number=row.number,
        url=row.url,
        title=row.title,
        open=True,
        labels=labels,
    )


async def issues_of(svc: Services, project_id: int) -> list[IntakeIssue]:
    """The issues the project took in (or is watching), with the run each became."""
    async with svc.database.read() as conn:
        await projects.get(conn, project_id)
        return await issues.list_for_project(conn, project_id)
