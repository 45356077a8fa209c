"""QA of one step: a read-only agent judges the step's commit against its contract; or a person approves."""

from __future__ import annotations

from app import prompts
from app.domain.policy_prompt import qa_requirements
from app.domain.qa import QA_OUTPUT_SCHEMA, QaVerdict, read_verdict, render_report
from app.domain.records import Project, ProtocolRun, Stage, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.visible import check_visible_text
from app.errors import AgentError
from app.git import DiffStats, GitRepository
from app.services.agents import run_step_agent
from app.services.context import Services
from app.services.events import record
from app.services.execution import block_run
from app.services.policy import policy_for_run
from app.services.progress import defer_next_work
from app.services.workspace import ensure_worktree
from app.store import projects, protocols, steps
from app.store.transitions import move_protocol, move_step


async def run_quality(svc: Services, step_id: int) -> StepRun:
    """Judge a step waiting for QA: pass completes it, fail fails it and blocks the run."""
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step_id)
        run = await protocols.get(conn, step.protocol_run_id)
        project = await projects.get(conn, run.project_id)
    if step.status is not S.NEEDS_QA or run.status in (P.CANCELLED, P.FAILED, P.COMPLETED):
        return step
    worktree = await ensure_worktree(svc, project, run, discard=False)  # reads or pushes commits only
    sha = step.commit_sha or await worktree.head_sha()
    stats = await worktree.diff_stats(f"{sha}^", sha)
    verdict, agent_run_id = await _judge(svc, project, run, step, worktree, stats)
    async with svc.database.transaction() as conn:
        step = await steps.get(conn, step.id)
        report = render_report(step.name, verdict)
        await record(
            conn,
            project.id,
            "qa.verdict",
            f"QA {verdict.verdict}: {verdict.summary[:200]}",
            step=step,
            verdict=str(verdict.verdict),
            summary=verdict.summary,
            findings=[f.model_dump(mode="json") for f in verdict.findings],
            report=report,
            agent_run_id=agent_run_id,
        )
        target = S.COMPLETED if verdict.passed else S.FAILED
        step = await move_step(
            conn,
            step.id,
            target,
            expected_version=step.version,
            reason=f"QA {verdict.verdict}",
            changes={
                "qa_verdict": str(verdict.verdict),
                "summary": verdict.summary[:4000],
                "qa_prompt_version": prompts.load("qa").version,  # what its QA agent was told
            },
        )
        if not verdict.passed:
            await block_run(conn, run.id, f"QA failed step {step.step_index}")
        await defer_next_work(svc, conn, run.id)
    return step


async def _judge(
    svc: Services,
    project: Project,
    run: ProtocolRun,
    step: StepRun,
    worktree: GitRepository,
    stats: DiffStats,
) -> tuple[QaVerdict, int]:
    changes = "\n".join(f"- `{f.path}` (+{f.insertions} −{f.deletions})" for f in stats.files) or "(none)"
    record_, result = await run_step_agent(
        svc,
        step,
        project=project,
        run=run,
        stage=Stage.QA,
        workdir=worktree.path,
        output_schema=QA_OUTPUT_SCHEMA,
        diff_summary=changes,
        qa_policy=qa_requirements((await policy_for_run(svc, run.id)).policy),
    )
    if not result.succeeded and result.structured_output is None:
        # The agent itself broke (crash, timeout, API error): try again rather than judge on nothing.
        raise AgentError(f"QA agent {result.status}: {result.error or 'no detail'}")
    return read_verdict(result.structured_output), record_.id


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
