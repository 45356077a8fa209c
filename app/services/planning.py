"""Protocol runs: create one, start it, and plan it into a committed plan and its steps."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import prompts
from app.artifacts.folder import ProtocolFolder, in_folder
from app.domain.actions import RunAction, run_action_refusal
from app.domain.commits import planning_commit, with_correlation
from app.domain.naming import check_task_title, slugify
from app.domain.plan import PLAN_OUTPUT_SCHEMA, AcceptedPlan, accept_plan, step_title
from app.domain.policy_prompt import planning_requirements
from app.domain.protocol_files import protocol_folder, step_index_of
from app.domain.records import Project, ProjectStatus, ProtocolRun, Stage
from app.domain.statuses import ProtocolStatus as P
from app.domain.visible import check_visible_text
from app.domain.workflow import plan_work
from app.errors import AgentError, ConflictError, InvalidInputError, PlanRejectedError
from app.git import GitRepository
from app.services.agents import Subject, run_agent
from app.services.choices import engine_for
from app.services.context import Services
from app.services.events import record
from app.services.findings import apply_plan_review, record_policy_problems, review_plan
from app.services.policy import policy_for_run, record_run_policy
from app.services.progress import defer_next_work
from app.services.travel import keep_head, pack_head
from app.services.workspace import branch_for, ensure_worktree
from app.store import events as event_store
from app.store import idempotency as idempotency_keys
from app.store import jobs, projects, protocols, steps
from app.store.idempotency import Claim
from app.store.transitions import move_protocol
from app.tracing import RunKey

MAX_DESCRIPTION = 20_000


async def create_protocol(
    svc: Services,
    project_id: int,
    *,
    title: str,
    description: str = "",
    idempotency: Claim | None = None,
    **choices: Any,
) -> ProtocolRun:
    """A new `pending` run numbered after the project's last one; with `idempotency`, the run its key
    created already, if it did (the key is stored with the run)."""
    title = check_task_title(title)
    check_visible_text(description, field="description", multiline=True)
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInputError(
            f"the description is longer than {MAX_DESCRIPTION} characters", field="description"
        )
    async with svc.database.transaction() as conn:
        if (earlier := await idempotency_keys.claim(conn, idempotency)) is not None:
            return await protocols.get(conn, earlier)
        project = await projects.get(conn, project_id)
        if project.status is ProjectStatus.FAILED:
            # A run waiting for setup to finish may be created; one on a failed setup could never start.
            raise await _not_ready(conn, project)
        run = await protocols.create(
            conn, project_id, title=title, slug=slugify(title), description=description, **choices
        )
        await idempotency_keys.settle(conn, idempotency, run.id)
        await record(
            conn,
            project_id,
            "protocol.created",
            f"protocol {run.name} created",
            run=run,
            number=run.number,
            name=run.name,
        )
    svc.tracing.run_created(RunKey(run.id, run.created_at))
    return run


async def start_protocol(svc: Services, run_id: int, *, expected_version: int | None = None) -> ProtocolRun:
    """Plan a pending run (or one whose planning failed); a planned run starts running its steps.

    A run with steps is never planned again: that would build over its own commits.
    """
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
        if project.status is not ProjectStatus.READY:
            raise await _not_ready(conn, project)
        plan = await steps.list_for_protocol(conn, run.id)
        refusal = run_action_refusal(RunAction.START, run.status, plan)
        if refusal is not None and plan:  # else the status machine refuses it below, as a typed 409
            raise ConflictError(f"protocol run {run.name}: {refusal}", status=str(run.status))
        version = run.version if expected_version is None else expected_version
        if run.status is P.PLANNED:
            run = await move_protocol(conn, run.id, P.RUNNING, expected_version=version, reason="started")
            await defer_next_work(svc, conn, run.id)
        else:
            run = await move_protocol(conn, run.id, P.PLANNING, expected_version=version, reason="started")
            await jobs.defer(conn, plan_work(run.id))
    return run


async def _not_ready(conn: AsyncConnection, project: Project) -> ConflictError:
    """Why the project takes no work yet, and what makes it ready."""
    said = f"project {project.name} is {project.status}, not ready"
    if project.status is ProjectStatus.FAILED:
        failed = await event_store.recent(
            conn, project_id=project.id, type_prefix="project.setup_failed", limit=1
        )
        reason = failed[0].payload.get("reason") if failed else None
        fix = (
            f"; fix the cause, then re-run setup: POST /projects/{project.id}/actions/setup "
            f"or `tasksgodzilla project setup {project.id}`"
        )
        said = f"project {project.name}'s setup failed" + (f": {reason}" if reason else "") + fix
    elif project.status is ProjectStatus.AWAITING_ANSWERS:
        said += f"; answer its setup questions (POST /projects/{project.id}/clarifications)"
    else:
        said += "; its setup is under way: start the run once the project is ready"
    return ConflictError(said, status=str(project.status), project_id=project.id)


async def plan_protocol(svc: Services, run_id: int) -> ProtocolRun:
    """Run the planning agent, check its plan, write and commit it, create the steps, start running."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
    if run.status is not P.PLANNING:
        return run  # planned already, or cancelled meanwhile: nothing to do
    worktree = await ensure_worktree(svc, project, run)
    commit = await worktree.find_step_commit(run.number, 0)
    # The policy is read at the base commit: before the plan's commit, HEAD is the base.
    policy = await record_run_policy(
        svc, run.id, worktree, await worktree.head_sha() if commit is None else f"{commit}~1"
    )
    if policy.problems:  # a refused repository file or override: findings, and the run goes on
        async with svc.database.transaction() as conn:
            await record_policy_problems(conn, run, [(p.code, p.message) for p in policy.problems])
    if commit is None:
        plan = await _ask_for_plan(svc, run, worktree)
        async with svc.database.transaction() as conn:
            # A job that froze while another worker took its run over must not write a second plan:
            # the plan is written and committed under the run's row lock (a few milliseconds).
            await protocols.hold_while_planning(conn, run.id)
            commit = await worktree.find_step_commit(run.number, 0)
            if commit is None:
                written = await in_folder(
                    worktree.path, run.name, lambda folder: folder.write_plan(plan, replace=True)
                )
                message = with_correlation(planning_commit(run.title, number=run.number), run.correlation_id)
                commit = await worktree.commit_all(message)
                if commit is None:
                    raise AgentError("the plan produced no change to commit")
                await _record_plan(conn, run, plan, written, commit)
    return await _finish_planning(svc, project, run.id, worktree, commit)


async def _ask_for_plan(svc: Services, run: ProtocolRun, worktree: GitRepository) -> AcceptedPlan:
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, run.project_id)
    template = prompts.load("planning")
    prompt = template.render(
        branch_name=branch_for(svc, project, run),
        protocol_name=run.name,
        task_title=run.title,
        task_description=run.description or "(no further description)",
        plan_template=prompts.load("plan_template").text,
        step_template=prompts.load("step_template").text,
        policy_requirements=planning_requirements((await policy_for_run(svc, run.id)).policy),
    )
    _, result = await run_agent(
        svc,
        Subject(run.project_id, run.id),
        stage=Stage.PLANNING,
        choice=await engine_for(svc, Stage.PLANNING, project, run),
        prompt=prompt,
        prompt_version=template.version,
        workdir=worktree.path,
        output_schema=PLAN_OUTPUT_SCHEMA,
    )
    if not result.succeeded:
        raise AgentError(f"planning agent {result.status}: {result.error or 'no detail'}")
    try:
        return accept_plan(
            result.structured_output, secrets_in_it=result.secrets_redacted.get("structured_output", [])
        )
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
    conn: AsyncConnection, run: ProtocolRun, plan: AcceptedPlan, files: list[str], commit: str
) -> None:
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


async def _finish_planning(
    svc: Services, project: Project, run_id: int, worktree: GitRepository, commit: str
) -> ProtocolRun:
    """Steps from the committed plan, then planned → running, in one transaction."""
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run_id)
    name = run.name
    # Read before the transaction opens: no disk I/O while it holds a connection and row locks.
    planned = await in_folder(worktree.path, name, _steps_from)
    travelling = await pack_head(worktree, run, commit)  # the plan's commit, for any other machine
    review = await review_plan(svc, run_id, worktree.path, name)  # policy findings (issue 14)
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        existing = await steps.list_for_protocol(conn, run.id)
        if existing:
            raise ConflictError(f"protocol run {run.name} has steps already: it is never planned twice")
        if review.blocker() is not None:  # strict mode: the plan's blocking finding stops the run here
            blocked = await apply_plan_review(conn, run, review)
            assert blocked is not None
            return blocked
        await steps.create_many(conn, run.id, planned)
        await apply_plan_review(conn, run, review)  # policy findings (issue 14): warnings only here
        run = await move_protocol(
            conn,
            run.id,
            P.PLANNED,
            expected_version=run.version,
            changes={
                "branch_name": branch_for(svc, project, run),
                "protocol_root": str(protocol_folder(run.name)),
                "head_sha": commit,
                "planning_prompt_version": prompts.load("planning").version,
                "plan_attempts": run.plan_attempts + 1,
            },
        )
        await keep_head(conn, run, travelling)
        run = await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version, reason="plan ready")
        await defer_next_work(svc, conn, run.id)
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
