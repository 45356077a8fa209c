"""Applying a CI result or a merge to what it is about: repository → project → run (by branch) →
the step whose commit CI tested. What cannot be placed, or changes nothing, is said so and left."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import (
    CiAction,
    CiResult,
    CiSignal,
    DeliveryOutcome,
    IgnoredSignal,
    MergeSignal,
    Provider,
    RunCiSignal,
    WebhookDelivery,
    ci_action,
    ci_target,
    fix_ci_limit,
    merge_refusal,
    project_repository,
    repeats_a_result,
    serves_repository,
)
from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import NotFoundError
from app.services.context import Services
from app.services.delivery_facts import ForgeFacts
from app.services.events import record
from app.services.progress import defer_auto_merge
from app.store import events, projects, protocols, steps
from app.store.transitions import move_protocol, move_step

FIX_REQUESTED = "ci.fix_requested"


@dataclass(frozen=True)
class Applied:
    """What a delivery did, and what it turned out to be about."""

    outcome: DeliveryOutcome
    detail: str
    project_id: int | None = None
    protocol_run_id: int | None = None
    step_run_id: int | None = None
    next_work: bool = False  # the run may have a job to queue now (QA, a fix-CI run)


async def apply_signal(
    conn: AsyncConnection,
    svc: Services,
    signal: CiSignal | MergeSignal | IgnoredSignal | RunCiSignal,
    delivery: WebhookDelivery,
    facts: ForgeFacts | None = None,
) -> Applied:
    """Apply one delivery's signal inside the caller's transaction (`facts`: what the forge said,
    asked before it)."""
    facts = facts or ForgeFacts()
    if isinstance(signal, IgnoredSignal):
        return Applied(DeliveryOutcome.IGNORED, signal.reason)
    if isinstance(signal, RunCiSignal):
        return await _apply_run_ci(conn, svc, signal, delivery, facts)
    owners = await _projects_for(conn, signal.provider, signal.repository)
    if not owners:
        return Applied(
            DeliveryOutcome.IGNORED, f"no project is {signal.provider} repository {signal.repository}"
        )
    if isinstance(signal, MergeSignal):
        return await _apply_merge(conn, owners, signal, delivery)
    return await _apply_ci(conn, svc, owners, signal, delivery, facts)


async def _projects_for(conn: AsyncConnection, provider: Provider, repository: str) -> dict[int, Project]:
    candidates = await projects.forge_candidates(conn, repository)
    return {p.id: p for p in candidates if serves_repository(p, provider, repository)}


def _where(signal: CiSignal) -> str:
    places = [f"branch {b}" for b in signal.branches]
    if signal.pr_number is not None:
        places.append(f"#{signal.pr_number}")
    return " or ".join(places)


async def _apply_ci(
    conn: AsyncConnection,
    svc: Services,
    owners: dict[int, Project],
    signal: CiSignal,
    delivery: WebhookDelivery,
    facts: ForgeFacts,
) -> Applied:
    runs = await protocols.on_branches(conn, list(owners), list(signal.branches), pr_number=signal.pr_number)
    if not runs:
        return Applied(DeliveryOutcome.IGNORED, f"no protocol run on {_where(signal)} of {signal.repository}")
    first_reason = ""
    for run in runs:
        plan = await steps.list_for_protocol(conn, run.id)
        target = ci_target(run, plan, signal.sha)
        if target.step is not None:
            project = owners[run.project_id]
            log = facts.ci_logs.get(project.id, {})
            return await _apply_result(conn, svc, project, run, target.step, signal, delivery, log)
        first_reason = first_reason or target.reason
    # Recorded on the run it was nearest to, so an operator sees why CI had no effect.
    await _ignored_event(conn, runs[0], delivery, first_reason, sha=signal.sha)
    return Applied(DeliveryOutcome.IGNORED, first_reason, runs[0].project_id, runs[0].id)


async def _apply_run_ci(
    conn: AsyncConnection, svc: Services, signal: RunCiSignal, delivery: WebhookDelivery, facts: ForgeFacts
) -> Applied:
    """The original project's report.sh: no commit, so the result goes to the run's head step (the
    step whose commit is the run's head), and the event says it was mapped so."""
    try:
        run = await protocols.get(conn, signal.protocol_run_id)
    except NotFoundError:
        return Applied(DeliveryOutcome.IGNORED, f"no protocol run {signal.protocol_run_id}")
    project = await projects.get(conn, run.project_id)
    if project.ci_provider not in (None, signal.provider.value):
        reason = f"{run.name}'s project reports CI from {project.ci_provider or 'no forge'}"
        await _ignored_event(conn, run, delivery, reason, sha=None)
        return Applied(DeliveryOutcome.IGNORED, reason, run.project_id, run.id)
    if signal.branch is not None and signal.branch != run.branch_name:
        reason = f"branch {signal.branch} is not {run.name}'s branch {run.branch_name}"
        await _ignored_event(conn, run, delivery, reason, sha=None)
        return Applied(DeliveryOutcome.IGNORED, reason, run.project_id, run.id)
    plan = await steps.list_for_protocol(conn, run.id)
    head = [s for s in plan if run.head_sha and s.commit_sha == run.head_sha]
    if not head:
        reason = f"{run.name} has no committed head step to apply CI to"
        await _ignored_event(conn, run, delivery, reason, sha=None)
        return Applied(DeliveryOutcome.IGNORED, reason, run.project_id, run.id)
    step = max(head, key=lambda s: s.step_index)
    sha = run.head_sha or ""
    await record(
        conn,
        project.id,
        "ci.mapped_to_head",
        f"the original report.sh gave no commit: its {signal.result} is applied to step "
        f"{step.step_index}, the run's head at {sha[:12]}",
        step=step,
        provider=str(signal.provider),
        protocol_run_id=run.id,
        sha=sha,
        delivery=delivery.delivery_id,
    )
    as_ci = CiSignal(
        provider=signal.provider,
        repository=project_repository(project) or "",
        branches=(run.branch_name,) if run.branch_name else (),
        sha=sha,
        result=signal.result,
        source="origin-report",
        name="report.sh (protocol_run_id)",
        summary=f"the original report.sh reported {signal.result}",
        url=signal.url,
    )
    return await _apply_result(
        conn, svc, project, run, step, as_ci, delivery, facts.ci_logs.get(project.id, {})
    )


async def _apply_result(
    conn: AsyncConnection,
    svc: Services,
    project: Project,
    run: ProtocolRun,
    step: StepRun,
    signal: CiSignal,
    delivery: WebhookDelivery,
    log: dict[str, Any],
) -> Applied:
    action = ci_action(step, signal.result, qa_on_ci=svc.settings.auto_qa_on_ci)
    facts: dict[str, Any] = {
        "provider": str(signal.provider),
        "source": signal.source,
        "name": signal.name,
        "sha": signal.sha,
        "url": signal.url,
        "delivery": delivery.delivery_id,
    }
    applied = Applied(DeliveryOutcome.APPLIED, "", project.id, run.id, step.id)
    if action is not CiAction.BLOCK and step.ci_status == signal.result:  # blocking is never a repeat
        kind = f"ci.{signal.result}"
        earlier = await events.list_page(conn, step_run_id=step.id, event_types=[kind], limit=500)
        if repeats_a_result(step, signal, [e.payload for e in earlier]):
            note = f"CI {signal.result} ({signal.name}) on {signal.sha[:12]} was recorded already"
            return replace(applied, outcome=DeliveryOutcome.IGNORED, detail=note)
    if action is CiAction.BLOCK:
        return await _block(conn, svc, project, run, step, signal, facts, applied, log)
    step = await steps.update_fields(
        conn, step.id, expected_version=step.version, ci_status=str(signal.result)
    )
    if signal.result is CiResult.FAILED:
        note = f"CI failed on step {step.step_index}, which is {step.status}: nothing more to block"
        await record(conn, project.id, "ci.failed", note, step=step, summary=signal.summary, **facts)
        return replace(applied, detail=note)
    if action is CiAction.QA:
        note = f"CI passed on step {step.step_index}: QA is queued"
    elif step.status is S.NEEDS_QA and not svc.settings.auto_qa_after_exec:
        # Never a silent skip: CI success does not pass QA; the step keeps waiting for it.
        note = f"CI passed on step {step.step_index}: it still waits for QA (run QA or approve it)"
    elif step.status is S.NEEDS_QA:
        note = f"CI passed on step {step.step_index}: QA judges it next"
    else:
        note = f"CI passed on step {step.step_index} ({step.status})"
    await record(conn, project.id, "ci.passed", note, step=step, **facts)
    # The head's CI passing may be what an auto-merge waited for (app.services.auto_merge).
    await defer_auto_merge(svc, conn, run.id)
    return replace(applied, detail=note, next_work=action is CiAction.QA)


async def _block(
    conn: AsyncConnection,
    svc: Services,
    project: Project,
    run: ProtocolRun,
    step: StepRun,
    signal: CiSignal,
    facts: dict[str, Any],
    applied: Applied,
    log: dict[str, Any],
) -> Applied:
    """CI failed on the step's head commit: block the step and its run; maybe send it back to fix it."""
    failure = (
        f"CI failed ({signal.name}): {signal.summary}" if signal.summary else f"CI failed ({signal.name})"
    )
    step = await move_step(
        conn,
        step.id,
        S.BLOCKED,
        expected_version=step.version,
        reason=failure[:300],
        changes={"ci_status": CiResult.FAILED.value, "last_error": failure[:2000]},
    )
    note = f"CI failed on step {step.step_index} at {signal.sha[:12]}"
    await record(conn, project.id, "ci.failed", note, step=step, summary=signal.summary, **facts)
    if run.status is not P.RUNNING:
        return replace(applied, detail=f"{note}; the run is {run.status}")
    run = await move_protocol(
        conn,
        run.id,
        P.BLOCKED,
        expected_version=run.version,
        reason=f"CI failed on step {step.step_index}",
        changes={"last_error": failure[:2000]},
    )
    if await _request_fix(conn, svc, project, run, step, signal.sha, log):
        return replace(applied, detail=f"{note}; the step runs again to fix it", next_work=True)
    return replace(applied, detail=f"{note}; step and run blocked")


async def _request_fix(
    conn: AsyncConnection,
    svc: Services,
    project: Project,
    run: ProtocolRun,
    step: StepRun,
    sha: str,
    log: dict[str, Any],
) -> bool:
    """Send the step back to its agent, with the failure (and `log`, the failed job's name and log
    end, for app.services.execution to read back) as context, if fix-CI runs remain."""
    limit = fix_ci_limit(project, svc.settings.fix_ci_attempts)
    done = len(await events.list_page(conn, step_run_id=step.id, event_types=[FIX_REQUESTED], limit=500))
    if done >= limit:
        return False
    attempt = done + 1
    step = await move_step(
        conn, step.id, S.PENDING, expected_version=step.version, reason=f"fix CI ({attempt} of {limit})"
    )
    await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version, reason="fixing CI")
    await record(
        conn,
        project.id,
        FIX_REQUESTED,
        f"step {step.step_index} goes back to its agent to fix CI ({attempt} of {limit})",
        step=step,
        attempt=attempt,
        limit=limit,
        sha=sha,
        **log,
    )
    return True


async def _apply_merge(
    conn: AsyncConnection, owners: dict[int, Project], signal: MergeSignal, delivery: WebhookDelivery
) -> Applied:
    runs = await protocols.on_branches(conn, list(owners), [signal.branch])
    if not runs:
        return Applied(DeliveryOutcome.IGNORED, f"no protocol run on branch {signal.branch}")
    run = _merged_run(runs, signal)
    refusal = merge_refusal(run, signal)
    if refusal is not None:
        await _ignored_event(conn, run, delivery, refusal, sha=signal.sha)
        return Applied(DeliveryOutcome.IGNORED, refusal, run.project_id, run.id)
    await record(
        conn,
        run.project_id,
        "pr.merged",
        f"{signal.provider} #{signal.pr_number} merged",
        run=run,
        provider=str(signal.provider),
        number=signal.pr_number,
        url=signal.url,
        sha=signal.sha,
        delivery=delivery.delivery_id,
    )
    run = await move_protocol(
        conn,
        run.id,
        P.COMPLETED,
        expected_version=run.version,
        reason=f"#{signal.pr_number} merged",
        payload={"pr_number": signal.pr_number, "sha": signal.sha},
    )
    return Applied(
        DeliveryOutcome.APPLIED, f"#{signal.pr_number} merged: run completed", run.project_id, run.id
    )


def _merged_run(runs: Sequence[ProtocolRun], signal: MergeSignal) -> ProtocolRun:
    """The run whose own PR/MR this is; else the newest run on the branch."""
    return next((r for r in runs if r.pr_number == signal.pr_number), runs[0])


async def _ignored_event(
    conn: AsyncConnection, run: ProtocolRun, delivery: WebhookDelivery, reason: str, *, sha: str | None
) -> None:
    await record(
        conn,
        run.project_id,
        "webhook.ignored",
        f"{delivery.provider} {delivery.event} ignored: {reason}",
        run=run,
        provider=str(delivery.provider),
        event=delivery.event,
        reason=reason,
        sha=sha,
        delivery=delivery.delivery_id,
    )
