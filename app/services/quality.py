"""QA of one step: a read-only agent (two, for a critical step) judges the step's commit against its
contract, and guardrails check each verdict; or a person approves. Also: marking a step critical."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app import prompts
from app.domain import findings as rules
from app.domain.agents import AgentResult
from app.domain.findings import Finding
from app.domain.policy_prompt import qa_requirements
from app.domain.qa import QA_OUTPUT_SCHEMA, QaVerdict, read_verdict, render_report
from app.domain.qa_guardrails import check_verdict
from app.domain.records import AgentRun, Project, ProtocolRun, Stage, StepRun
from app.domain.second_opinion import decide, is_critical, label, second_opinion_for, unavailable_reason
from app.domain.selection import EngineChoice
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.visible import check_visible_text
from app.errors import AgentError, ConflictError
from app.git import DiffStats, GitRepository
from app.services.agents import run_step_agent
from app.services.choices import engine_for
from app.services.context import Services
from app.services.events import record
from app.services.execution import block_run, prefetch_job_reads
from app.services.findings import blocked_reason, record_findings
from app.services.policy import RunPolicy, policy_for_run
from app.services.progress import defer_next_work
from app.services.workspace import ensure_worktree
from app.store import projects, protocols, steps
from app.store.transitions import move_protocol, move_step


@dataclass(frozen=True)
class Opinion:
    """One QA agent's verdict on a step, who gave it, and what the guardrails found in it."""

    verdict: QaVerdict
    agent_run_id: int
    choice: EngineChoice
    guardrails: list[Finding]


async def run_quality(svc: Services, step_id: int) -> StepRun:
    """Judge a step waiting for QA: pass completes it, fail fails it and blocks the run.

    A critical step (app.domain.second_opinion) is judged twice; two opinions that disagree block it
    and its run for a person. A guardrail finding on a pass blocks it too in strict mode, when the
    pack lists its code under `findings.blocking`; otherwise it is a warning shown with the verdict.
    """
    async with svc.database.read() as conn:
        step, run, project = await steps.get_in_context(conn, step_id)
        if step.status is not S.NEEDS_QA or run.status in (P.CANCELLED, P.FAILED, P.COMPLETED):
            return step
        await prefetch_job_reads(svc, conn, run.id, project.id)
    worktree = await ensure_worktree(svc, project, run, discard=False)  # reads or pushes commits only
    sha = step.commit_sha or await worktree.head_sha()
    stats = await worktree.diff_stats(f"{sha}^", sha)
    policy = await policy_for_run(svc, run.id)
    judge = _Judge(svc, project, run, step, worktree, stats, qa_requirements(policy.policy))
    opinions, unavailable = await _opinions(svc, judge, step, policy)
    async with svc.database.transaction() as conn:
        step, current_run, _ = await steps.get_in_context(conn, step.id)
        for position, opinion in enumerate(opinions):
            await _record_verdict(conn, project.id, step, opinion, _opinion_name(position, len(opinions)))
        guardrails = [f for o in opinions for f in o.guardrails]
        await record_findings(conn, project.id, unavailable + guardrails, step=step)
        target, reason = _outcome(opinions, policy)
        if len({o.verdict.passed for o in opinions}) > 1:
            await _record_disagreement(conn, project.id, step, opinions)
        changes = {
            "qa_verdict": _step_verdict(opinions),
            "summary": _summary(opinions)[:4000],
            "qa_prompt_version": prompts.load("qa").version,  # what its QA agents were told
        }
        if target is S.BLOCKED:
            changes["last_error"] = reason[:2000]
        step = await move_step(
            conn,
            step.id,
            target,
            expected_version=step.version,
            reason=reason,
            changes=changes,
            project_id=project.id,
        )
        if target is not S.COMPLETED:
            await block_run(
                conn, run.id, f"QA failed step {step.step_index}" if target is S.FAILED else reason
            )
        # The run as read above, unless blocking it just moved it (then defer_next_work reads it).
        await defer_next_work(svc, conn, run.id, run=current_run if target is S.COMPLETED else None)
    return step


async def _opinions(
    svc: Services, judge: _Judge, step: StepRun, policy: RunPolicy
) -> tuple[list[Opinion], list[Finding]]:
    """The first QA opinion, and a critical step's second (or the finding saying none is distinct)."""
    first = await judge.first()
    if not is_critical(step.critical, policy.policy):
        return [first], []
    second = second_opinion_for(policy.policy, first.choice, _settings_qa(svc))
    if second is None:
        reason = unavailable_reason(first.choice)
        return [first], [rules.finding("qa.second_opinion_unavailable", reason, first=label(first.choice))]
    return [first, await judge.with_choice(second)], []


def _outcome(opinions: list[Opinion], policy: RunPolicy) -> tuple[S, str]:
    """The step's next status and why: the opinions' decision, or a guardrail that blocks a pass."""
    target = decide([o.verdict for o in opinions])
    if target is S.BLOCKED:
        said = ", ".join(f"{label(o.choice)} {o.verdict.verdict}" for o in opinions)
        return target, f"QA opinions disagree ({said}): approve or retry the step"
    if target is S.COMPLETED:
        guardrails = [f for o in opinions for f in o.guardrails]
        if (blocker := rules.blocking(guardrails, policy.policy, policy.strict)) is not None:
            return S.BLOCKED, blocked_reason(blocker)
    return target, f"QA {opinions[0].verdict.verdict}"


def _opinion_name(position: int, count: int) -> str:
    return "only" if count == 1 else ("first", "second")[position]


def _step_verdict(opinions: list[Opinion]) -> str:
    verdicts = {str(o.verdict.verdict) for o in opinions}
    return verdicts.pop() if len(verdicts) == 1 else "disagreement"


def _summary(opinions: list[Opinion]) -> str:
    if len(opinions) == 1:
        return opinions[0].verdict.summary
    return "\n".join(f"{label(o.choice)} ({o.verdict.verdict}): {o.verdict.summary}" for o in opinions)


def _settings_qa(svc: Services) -> EngineChoice:
    return EngineChoice(str(svc.settings.qa_engine), svc.settings.qa_model)


async def _record_verdict(
    conn: AsyncConnection, project_id: int, step: StepRun, opinion: Opinion, name: str
) -> None:
    verdict = opinion.verdict
    await record(
        conn,
        project_id,
        "qa.verdict",
        f"QA {verdict.verdict}"
        + ("" if name == "only" else f" ({name} opinion)")
        + f": {verdict.summary[:200]}",
        step=step,
        verdict=str(verdict.verdict),
        summary=verdict.summary,
        findings=[f.model_dump(mode="json") for f in verdict.findings],
        report=render_report(step.name, verdict),
        agent_run_id=opinion.agent_run_id,
        opinion=name,
        engine=opinion.choice.engine,
        model=opinion.choice.model,
        guardrails=[f.model_dump(mode="json") for f in opinion.guardrails],
    )


async def _record_disagreement(
    conn: AsyncConnection, project_id: int, step: StepRun, opinions: list[Opinion]
) -> None:
    said = ", ".join(f"{label(o.choice)} {o.verdict.verdict}" for o in opinions)
    await record(
        conn,
        project_id,
        "qa.disagreement",
        f"QA opinions disagree on step {step.step_index} ({said}): a person decides",
        step=step,
        opinions=[
            {
                "opinion": _opinion_name(i, len(opinions)),
                "engine": o.choice.engine,
                "model": o.choice.model,
                "verdict": str(o.verdict.verdict),
                "agent_run_id": o.agent_run_id,
                "report": render_report(step.name, o.verdict),
            }
            for i, o in enumerate(opinions)
        ],
    )


@dataclass(frozen=True)
class _Judge:
    """Runs QA agents on one step's commit: the first as any QA, or with a chosen engine and model."""

    svc: Services
    project: Project
    run: ProtocolRun
    step: StepRun
    worktree: GitRepository
    stats: DiffStats
    qa_policy: str

    @property
    def _values(self) -> dict[str, str]:
        changes = "\n".join(f"- `{f.path}` (+{f.insertions} −{f.deletions})" for f in self.stats.files)
        return {"diff_summary": changes or "(none)", "qa_policy": self.qa_policy}

    async def first(self) -> Opinion:
        return await self.with_choice(None)

    async def with_choice(self, choice: EngineChoice | None) -> Opinion:
        """The opinion of a QA agent on `choice` (None: the stage's engine for this step)."""
        record_, result = await run_step_agent(
            self.svc,
            self.step,
            project=self.project,
            run=self.run,
            stage=Stage.QA,
            workdir=self.worktree.path,
            output_schema=QA_OUTPUT_SCHEMA,
            choice=choice,
            **self._values,
        )
        return self._opinion(record_, result)

    def _opinion(self, record_: AgentRun, result: AgentResult) -> Opinion:
        if not result.succeeded and result.structured_output is None:
            # The agent itself broke (crash, timeout, API error): try again rather than judge on nothing.
            raise AgentError(f"QA agent {result.status}: {result.error or 'no detail'}")
        verdict = read_verdict(result.structured_output)
        choice = EngineChoice(record_.engine, record_.model)  # the one that answered
        return Opinion(verdict, record_.id, choice, check_verdict(verdict, self.stats.paths))


async def approve_step(
    svc: Services, step_id: int, *, by: str, note: str = "", expected_version: int | None = None
) -> StepRun:
    """A person passes a step (waiting for QA, failed or blocked); its run moves on if nothing blocks it."""
    check_visible_text(note, field="note", multiline=True)
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        version = step.version if expected_version is None else expected_version
        step = await move_step(
            conn,
            step.id,
            S.COMPLETED,
            expected_version=version,
            reason=f"approved by {by}",
            changes={"qa_verdict": "approved"},
        )
        run = await protocols.get(conn, step.protocol_run_id)
        await record(
            conn,
            run.project_id,
            "step.approved",
            f"step {step.step_index} approved by {by}",
            step=step,
            by=by,
            note=note[:2000],
        )
        others = await steps.list_for_protocol(conn, run.id)
        stuck = [s for s in others if s.status in (S.FAILED, S.BLOCKED)]
        if run.status is P.BLOCKED and not stuck:
            await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version, reason="step approved")
        await defer_next_work(svc, conn, step.protocol_run_id)
    return step


async def mark_critical(
    svc: Services, step_id: int, *, critical: bool = True, by: str, expected_version: int | None = None
) -> StepRun:
    """Mark a step critical (its QA takes a second opinion), or not; ConflictError (409) when its QA
    is over, or when no second QA engine or model differs from its first (saying what to configure)."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        run = await protocols.get(conn, step.protocol_run_id)
        project = await projects.get(conn, run.project_id)
    if step.status in (S.COMPLETED, S.CANCELLED):
        raise ConflictError(
            f"step {step.step_index} is {step.status}: its QA is over", status=str(step.status)
        )
    if critical:
        policy = await policy_for_run(svc, run.id)
        first = await engine_for(svc, Stage.QA, project, run, step)
        if second_opinion_for(policy.policy, first, _settings_qa(svc)) is None:
            raise ConflictError(unavailable_reason(first), field="critical")
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        version = step.version if expected_version is None else expected_version
        step = await steps.update_fields(conn, step.id, expected_version=version, critical=critical)
        what = "marked critical" if critical else "no longer marked critical"
        await record(
            conn,
            run.project_id,
            "step.marked_critical",
            f"step {step.step_index} {what} by {by}",
            step=step,
            by=by,
            critical=critical,
        )
    return step
