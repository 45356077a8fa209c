"""Policy findings of a project, a plan, a step: gathered, evaluated, recorded, and in strict mode obeyed.

Each finding is a `policy.finding` event about its subject (the project, a run, or a step), written in
the transaction that writes the state it concerns. A finding already recorded for the same subject,
unchanged, is not recorded again when the subject is evaluated again. In strict mode, a finding whose
code the pack lists under `findings.blocking` blocks planning or the step, with its message as the
reason (`app.domain.findings.blocking`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.artifacts.folder import ProtocolFolder, in_folder
from app.domain import findings as rules
from app.domain.events import NewEvent
from app.domain.findings import Finding
from app.domain.protocol_files import PLAN_FILE, step_index_of
from app.domain.qa_guardrails import check_step_descriptions
from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import InvalidInputError, NotFoundError
from app.services.context import Services
from app.services.policy import RunPolicy, policy_for_project, policy_for_run
from app.store import events, steps
from app.store.transitions import move_protocol, move_step

FINDING_EVENT = "policy.finding"
MAX_EARLIER = 500  # earlier findings of one subject compared against, newest first
MAX_RECORDED = 100  # per evaluation: a step touching ten thousand forbidden files is said 100 times


def fingerprint(found: Finding) -> str:
    """What makes two findings the same: all of it."""
    canonical = json.dumps(found.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record_findings(
    conn: AsyncConnection,
    project_id: int,
    found: Sequence[Finding],
    *,
    run_id: int | None = None,
    step: StepRun | None = None,
) -> list[Finding]:
    """One `policy.finding` event per finding this subject has not had yet, unchanged; those recorded."""
    step_id = step.id if step is not None else None
    run_id = step.protocol_run_id if step is not None else run_id
    if not found:
        return []
    earlier = await events.recent(
        conn,
        project_id=project_id,
        protocol_run_id=run_id,
        step_run_id=step_id,
        type_prefix=FINDING_EVENT,
        limit=MAX_EARLIER,
    )
    seen = {
        e.payload.get("fingerprint")
        for e in earlier
        if e.event_type == FINDING_EVENT and (e.protocol_run_id, e.step_run_id) == (run_id, step_id)
    }
    recorded = []
    for item in found[:MAX_RECORDED]:
        mark = fingerprint(item)
        if mark in seen:
            continue
        seen.add(mark)
        recorded.append(item)
        await events.append(
            conn,
            NewEvent(
                project_id=project_id,
                protocol_run_id=run_id,
                step_run_id=step_id,
                event_type=FINDING_EVENT,
                message=f"{item.severity} {item.code}: {item.message}"[:2000],
                payload={
                    "finding": item.model_dump(mode="json"),
                    "fingerprint": mark,
                    "project_id": project_id,
                    "protocol_run_id": run_id,
                    "step_run_id": step_id,
                },
            ),
        )
    return recorded


async def record_policy_problems(
    conn: AsyncConnection, run: ProtocolRun, problems: Iterable[tuple[str, str]]
) -> list[Finding]:
    """The policy merge's problems for a run (a refused repo-local file, a refused override) as its
    findings: `(code, message)`, code one of the `policy.*` codes."""
    return await record_findings(conn, run.project_id, rules.from_policy_problems(problems), run_id=run.id)


# --- onboarding ------------------------------------------------------------------------------------


async def review_onboarding(
    svc: Services, project: Project, answers: Mapping[str, str] | None = None
) -> tuple[list[Finding], Finding | None]:
    """A project's onboarding findings (with `answers` added to those recorded), and the one that
    holds its setup in strict mode (a code the pack lists under `findings.blocking`)."""
    policy = await policy_for_project(svc, project.id)
    async with svc.database.read() as conn:
        given: dict[str, str] = {}
        for event in reversed(await events.recent(conn, project_id=project.id, type_prefix="setup.answered")):
            earlier = event.payload.get("answers")
            if isinstance(earlier, dict):
                given |= _given(earlier)
    facts = project.model_dump(mode="json", exclude={"policy_overrides"})
    found = rules.evaluate_project(policy.policy, given | _given(answers or {}), facts)
    return found, rules.blocking(found, policy.policy, policy.strict)


def _given(answers: Mapping[Any, Any]) -> dict[str, str]:
    """The answers that say something: a blank one leaves an earlier answer standing."""
    return {str(k): str(v) for k, v in answers.items() if str(v).strip()}


async def review_project(svc: Services, project: Project) -> None:
    """Onboarding readiness of a project, recorded as its findings (setup itself decides whether to
    wait for answers: app.services.projects)."""
    found, _ = await review_onboarding(svc, project)
    async with svc.database.transaction() as conn:
        await record_findings(conn, project.id, found)


# --- planning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanReview:
    """A committed plan's findings, read and evaluated before the transaction that records them."""

    policy: RunPolicy
    found: list[Finding]

    def blocker(self) -> Finding | None:
        return rules.blocking(self.found, self.policy.policy, self.policy.strict)


async def review_plan(svc: Services, run_id: int, worktree: Path, protocol_name: str) -> PlanReview:
    """Evaluate plan.md and the step files of a run as committed (read in a worker thread), with
    the guardrails on step descriptions (app.domain.qa_guardrails)."""
    policy = await policy_for_run(svc, run_id)

    def read(folder: ProtocolFolder) -> tuple[str, dict[str, str]]:
        names = [name for name in folder.list() if step_index_of(name) is not None]
        return folder.read(PLAN_FILE), {name: folder.read(name) for name in names}

    plan_md, step_files = await in_folder(worktree, protocol_name, read)
    found = rules.evaluate_protocol(policy.policy, plan_md, step_files) + check_step_descriptions(step_files)
    return PlanReview(policy, found)


async def apply_plan_review(
    conn: AsyncConnection, run: ProtocolRun, review: PlanReview
) -> ProtocolRun | None:
    """Record the plan's findings; in strict mode a blocking one blocks the planning run (returned)."""
    await record_plan_review(conn, run, review)
    blocker = review.blocker()
    if blocker is None:
        return None
    reason = blocked_reason(blocker)
    return await move_protocol(
        conn, run.id, P.BLOCKED, expected_version=run.version, reason=reason, changes={"last_error": reason}
    )


async def record_plan_review(conn: AsyncConnection, run: ProtocolRun, review: PlanReview) -> None:
    """The plan's findings: a step file's on its step (when the steps exist), the rest on the run."""
    by_file = {step.step_file: step for step in await steps.list_for_protocol(conn, run.id)}
    on_run = []
    for item in review.found:
        step = by_file.get(str(item.metadata.get("step_file")))
        if step is not None:
            await record_findings(conn, run.project_id, [item], step=step)
        else:
            on_run.append(item)
    await record_findings(conn, run.project_id, on_run, run_id=run.id)


# --- execution -------------------------------------------------------------------------------------


async def review_step(
    svc: Services,
    run: ProtocolRun,
    step: StepRun,
    worktree: Path,
    *,
    commands_passed: Sequence[str] | None = None,
    files_changed: Sequence[str] | None = None,
    ran: bool = False,
) -> tuple[list[Finding], Finding | None]:
    """A step's findings (before its agent runs; or, `ran`, after it, with what it did), and the one
    that blocks it in strict mode."""
    policy = await policy_for_run(svc, run.id)
    try:
        text = await in_folder(worktree, run.name, lambda folder: folder.read(step.step_file))
    except (NotFoundError, InvalidInputError):  # an agent removed it, or left a link: it has no sections
        text = ""
    listed = rules.section_items(text, "Artifacts") if ran else []
    present = await asyncio.to_thread(_existing, worktree, listed) if ran else None
    found = rules.evaluate_step(
        policy.policy, text, commands_passed, files_changed, present, step_file=step.step_file
    )
    return found, rules.blocking(found, policy.policy, policy.strict)


async def record_step_review(
    conn: AsyncConnection, run: ProtocolRun, step: StepRun, found: list[Finding], blocker: Finding | None
) -> str | None:
    """Record a step's findings; a blocking one blocks the running step, in this transaction, and is
    the reason returned (the caller blocks the run with it)."""
    step = await steps.get(conn, step.id)
    await record_findings(conn, run.project_id, found, step=step)
    if blocker is None or step.status is not S.RUNNING:
        return None
    reason = blocked_reason(blocker)
    await move_step(
        conn, step.id, S.BLOCKED, expected_version=step.version, reason=reason, changes={"last_error": reason}
    )
    return reason


def blocked_reason(blocker: Finding) -> str:
    return f"policy finding {blocker.code}: {blocker.message}"[:2000]


def _existing(worktree: Path, paths: list[str]) -> list[str]:
    """Those of `paths` (relative to the worktree, staying inside it) that exist."""
    found = []
    for path in paths:
        parts = PurePosixPath(path).parts
        if path.startswith("/") or ".." in parts or not parts:
            continue
        if os.path.lexists(worktree.joinpath(*parts)):
            found.append(path)
    return found
