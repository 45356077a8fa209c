"""Protocol runs: create one, start it, and plan it into a committed plan and its steps."""

from __future__ import annotations

from typing import Any

from app import prompts
from app.artifacts.folder import ProtocolFolder, in_folder
from app.domain.commits import planning_commit
from app.domain.naming import check_task_title, slugify
from app.domain.plan import PLAN_OUTPUT_SCHEMA, AcceptedPlan, accept_plan, step_title
from app.domain.protocol_files import protocol_folder, step_index_of
from app.domain.records import ProjectStatus, ProtocolRun, Stage
from app.domain.statuses import ProtocolStatus as P
from app.domain.workflow import plan_work
from app.errors import AgentError, ConflictError, InvalidInputError, PlanRejectedError
from app.git import GitRepository
from app.services.agents import Subject, run_agent
from app.services.choices import engine_for
from app.services.context import Services
from app.services.events import record
from app.services.progress import defer_next_work
from app.services.workspace import branch_for, ensure_worktree
from app.store import projects, protocols, steps
from app.store.transitions import move_protocol

MAX_DESCRIPTION = 20_000


async def create_protocol(
    svc: Services, project_id: int, *, title: str, description: str = "", **choices: Any
) -> ProtocolRun:
    """A new `pending` run numbered after the project's last one."""
    title = check_task_title(title)
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInputError(
            f"the description is longer than {MAX_DESCRIPTION} characters", field="description"
        )
    async with svc.database.transaction() as conn:
        run = await protocols.create(
            conn, project_id, title=title, slug=slugify(title), description=description, **choices
        )
        await record(
            conn,
            project_id,
            "protocol.created",
            f"protocol {run.name} created",
            run=run,
            number=run.number,
            name=run.name,
        )
    return run


async def start_protocol(svc: Services, run_id: int, *, expected_version: int | None = None) -> ProtocolRun:
    """Plan a pending run (or re-plan a blocked one); a planned run starts running its steps."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
        if project.status is not ProjectStatus.READY:
            raise ConflictError(
                f"project {project.name} is {project.status}, not ready", status=str(project.status)
            )
        version = run.version if expected_version is None else expected_version
        if run.status is P.PLANNED:
            run = await move_protocol(conn, run.id, P.RUNNING, expected_version=version, reason="started")
        else:
            run = await move_protocol(conn, run.id, P.PLANNING, expected_version=version, reason="started")
    if run.status is P.PLANNING:
        await svc.queue.defer(plan_work(run.id))
    else:
        await defer_next_work(svc, run.id)
    return run


async def plan_protocol(svc: Services, run_id: int) -> ProtocolRun:
    """Run the planning agent, check its plan, write and commit it, create the steps, start running."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
    if run.status is not P.PLANNING:
        return run  # planned already, or cancelled meanwhile: nothing to do
    worktree = await ensure_worktree(svc, project, run)
    commit = await worktree.find_step_commit(run.number, 0)
    if commit is None:
        plan = await _ask_for_plan(svc, run, worktree)
        written = await in_folder(
            worktree.path, run.name, lambda folder: folder.write_plan(plan, replace=True)
        )
        commit = await worktree.commit_all(planning_commit(run.title, number=run.number))
        if commit is None:
            raise AgentError("the plan produced no change to commit")
        await _record_plan(svc, run, plan, written, commit)
    return await _finish_planning(svc, run.id, worktree, commit)


async def _ask_for_plan(svc: Services, run: ProtocolRun, worktree: GitRepository) -> AcceptedPlan:
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, run.project_id)
    template = prompts.load("planning")
    prompt = template.render(
        branch_name=branch_for(svc, run),
        protocol_name=run.name,
        task_title=run.title,
        task_description=run.description or "(no further description)",
        plan_template=prompts.load("plan_template").text,
        step_template=prompts.load("step_template").text,
    )
    _, result = await run_agent(
        svc,
        Subject(run.project_id, run.id),
        stage=Stage.PLANNING,
        choice=engine_for(svc, Stage.PLANNING, project, run),
        prompt=prompt,
        prompt_version=template.version,
        workdir=worktree.path,
        output_schema=PLAN_OUTPUT_SCHEMA,
    )
    if not result.succeeded:
        raise AgentError(f"planning agent {result.status}: {result.error or 'no detail'}")
    try:
        return accept_plan(result.structured_output)
    except PlanRejectedError as rejected:
        async with svc.database.transaction() as conn:
            await record(
                conn,
                run.project_id,
                "plan.rejected",
                rejected.message,
                run=run,
                problems=rejected.details.get("problems", []),
            )
        raise


async def _record_plan(
    svc: Services, run: ProtocolRun, plan: AcceptedPlan, files: list[str], commit: str
) -> None:
    async with svc.database.transaction() as conn:
        await record(
            conn,
            run.project_id,
            "plan.accepted",
            f"plan with {len(plan.steps)} steps committed",
            run=run,
            files=files,
            steps=len(plan.steps),
            commit=commit,
        )


async def _finish_planning(svc: Services, run_id: int, worktree: GitRepository, commit: str) -> ProtocolRun:
    """Steps from the committed plan, then planned → running, in one transaction."""
    async with svc.database.read() as conn:
        name = (await protocols.get(conn, run_id)).name
    # Read before the transaction opens: no disk I/O while it holds a connection and row locks.
    planned = await in_folder(worktree.path, name, _steps_from)
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        existing = await steps.list_for_protocol(conn, run.id)
        if not existing:
            await steps.create_many(conn, run.id, planned)
        run = await move_protocol(
            conn,
            run.id,
            P.PLANNED,
            expected_version=run.version,
            changes={
                "branch_name": branch_for(svc, run),
                "worktree_path": str(worktree.path),
                "protocol_root": str(protocol_folder(run.name)),
                "head_sha": commit,
                "planning_prompt_version": prompts.load("planning").version,
                "plan_attempts": run.plan_attempts + 1,
            },
        )
        run = await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version, reason="plan ready")
    await defer_next_work(svc, run.id)
    return run


def _steps_from(folder: ProtocolFolder) -> list[dict[str, Any]]:
    found = []
    for name in folder.list():
        index = step_index_of(name)
        if index is not None:
            found.append(
                {"step_index": index, "name": step_title(folder.read(name), name), "step_file": name}
            )
    return found


async def fail_planning(svc: Services, run_id: int, reason: str, *, terminal: bool) -> None:
    """Planning gave up: a rejected plan fails the run; anything else blocks it (it can be retried)."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        if run.status is P.PLANNING:
            target = P.FAILED if terminal else P.BLOCKED
            await move_protocol(
                conn,
                run.id,
                target,
                expected_version=run.version,
                reason=reason,
                changes={"last_error": reason[:2000]},
            )
