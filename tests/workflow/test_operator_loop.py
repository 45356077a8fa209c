"""The operator's loop never loses work: each test here is a defect found by trying the product.

Real worker, real git (a bare origin), the scripted command agent.
"""

from __future__ import annotations

import json
import os

import pytest

from app.domain.actions import RunAction, allowed_run_actions
from app.domain.records import Stage
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.workspace import protocol_worktree_path
from app.errors import ConflictError
from app.services import controls, execution, planning, projects, quality
from app.store import agent_runs, events, protocols, steps
from app.store.transitions import move_protocol, move_step
from tests.support.workflow import (
    git,
    make_repos,
    project_ready,
    run_status,
    running_worker,
    shared_with_agents,
    wait_for,
    workflow_settings,
)


async def _started(svc, repos, title="Write two parts"):
    project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
    await wait_for(lambda: project_ready(svc, project.id), what="setup")
    run = await planning.create_protocol(svc, project.id, title=title)
    await planning.start_protocol(svc, run.id)
    return run


async def _until(svc, run_id, *statuses):
    async def reached():
        return await run_status(svc, run_id) in statuses

    await wait_for(reached, what=f"the run to be {' or '.join(statuses)}")


async def _state(svc, run_id):
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        plan = await steps.list_for_protocol(conn, run_id)
    return run, plan


async def _executions(svc, step_id) -> int:
    async with svc.database.transaction() as conn:
        return sum(r.stage is Stage.EXECUTION for r in await agent_runs.list_for_step(conn, step_id))


async def _blocked_by_qa(svc, repos):
    """A run whose step 1 QA failed (AGENT_QA_FAIL=1): the run is blocked; its state."""
    run = await _started(svc, repos)
    await _until(svc, run.id, "blocked")
    return await _state(svc, run.id)


def _subjects(repos, branch) -> list[str]:
    return git("--git-dir", str(repos.origin), "log", "--format=%s", branch).splitlines()


async def test_a_blocked_run_with_steps_is_never_planned_again_nor_skipped(
    database_url, tmp_path, monkeypatch
):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_QA_FAIL", "1")
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        run, plan = await _blocked_by_qa(svc, repos)
        head = run.head_sha
        assert plan[0].status is S.FAILED

        assert RunAction.START not in allowed_run_actions(run.status, plan)
        assert RunAction.RUN_NEXT_STEP not in allowed_run_actions(run.status, plan)
        with pytest.raises(ConflictError, match="planning again would drop its commits"):
            await planning.start_protocol(svc, run.id)
        with pytest.raises(ConflictError, match="step 1 is failed: retry or approve it first"):
            await controls.resume(svc, run.id)
        async with svc.database.transaction() as conn:  # say the run runs while its step 1 failed
            run = await move_protocol(conn, run.id, P.RUNNING, expected_version=run.version)
        with pytest.raises(ConflictError, match="step 1 is failed: retry or approve it first"):
            await controls.run_next_step(svc, run.id)
        with pytest.raises(ConflictError, match="step 1 comes first and is failed"):
            await controls.run_step(svc, plan[1].id)
        run, plan = await _state(svc, run.id)
    assert run.head_sha == head, "the recorded head moved"
    assert plan[1].status is S.PENDING
    assert _subjects(repos, run.branch_name)[0] == "feat: Part 1 [protocol-0001/01]"


async def test_retry_after_qa_failure_redoes_the_work_with_the_verdict_and_note(
    database_url, tmp_path, monkeypatch
):
    repos = make_repos(tmp_path)
    prompts = shared_with_agents(tmp_path / "prompts.jsonl")
    monkeypatch.setenv("AGENT_QA_FAIL", "1")
    monkeypatch.setenv("AGENT_PROMPT_LOG", str(prompts))
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        run, plan = await _blocked_by_qa(svc, repos)
        judged = plan[0].commit_sha
        await controls.retry_step(svc, plan[0].id, note="Mind the \x1b[31mcolours")
        await _until(svc, run.id, "completed")
        run, plan = await _state(svc, run.id)
        executions = await _executions(svc, plan[0].id)
        async with svc.database.transaction() as conn:
            kinds = [e.event_type for e in await events.list_page(conn, step_run_id=plan[0].id, limit=500)]

    assert executions == 2
    assert plan[0].commit_sha != judged
    assert plan[0].operator_note is None, "the note was for one attempt"
    assert kinds.count("qa.verdict") == 2
    assert "step.retried" in kinds
    subjects = _subjects(repos, run.branch_name)
    assert subjects[:3] == [
        "feat: Part 2 [protocol-0001/02]",
        "feat: Part 1 [protocol-0001/01]",  # the redo, on top of the commit QA failed
        "feat: Part 1 [protocol-0001/01]",
    ]
    redo = [json.loads(line) for line in prompts.read_text().splitlines() if '"execution"' in line][1]
    assert "## QA failed the previous commit of this step" in redo["prompt"]
    assert judged[:12] in redo["prompt"]
    assert "part 01 is wrong" in redo["prompt"]
    assert "Mind the \\x1b[31mcolours" in redo["prompt"], "the note arrives, its control characters escaped"
    assert (repos.local / "work").exists() is False  # the operator's own checkout is untouched


async def test_an_agent_that_changes_nothing_is_judged_not_retried(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_NO_CHANGE", "1")
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        run = await _started(svc, repos, title="Verify then write")
        await _until(svc, run.id, "completed", "blocked")
        run, plan = await _state(svc, run.id)
        executions = await _executions(svc, plan[0].id)
        async with svc.database.transaction() as conn:
            committed = await events.recent(conn, step_run_id=plan[0].id, type_prefix="step.committed")
    assert run.status is P.COMPLETED
    assert executions == 1
    assert committed[0].payload["unchanged"] is True
    assert committed[0].payload["files"] == []
    assert _subjects(repos, run.branch_name)[1] == "chore: Part 1 (no changes) [protocol-0001/01]"
    assert plan[0].qa_verdict == "pass"


async def test_a_commit_made_before_a_job_died_is_kept_and_reused(database_url, tmp_path, monkeypatch):
    """The job committed step 1 and died before recording it: its retry finds the commit (no second
    agent, no reset dropping it) and the recorded head moves onto it."""
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_QA_FAIL", "1")
    settings = workflow_settings(tmp_path)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        run, plan = await _blocked_by_qa(svc, repos)
    worktree = protocol_worktree_path(settings.resolved_projects_root, "demo", run.name)
    (worktree / "manual.txt").write_text("committed by the job that died\n")
    git("add", "-A", cwd=worktree)
    git(
        "-c",
        "user.name=A",
        "-c",
        "user.email=a@b.c",
        "commit",
        "-qm",
        "feat: Part 2 [protocol-0001/02]",
        cwd=worktree,
    )
    orphan = git("rev-parse", "HEAD", cwd=worktree)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        await quality.approve_step(svc, plan[0].id, by="operator")
        await _until(svc, run.id, "completed")
        run, plan = await _state(svc, run.id)
        executions = await _executions(svc, plan[1].id)
    assert executions == 0, "the dead job's commit was thrown away and the agent paid again"
    assert plan[1].commit_sha == orphan
    assert run.head_sha == orphan


async def test_a_rejected_push_is_a_terminal_conflict_not_a_paid_retry(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_QA_FAIL", "1")
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        run, plan = await _blocked_by_qa(svc, repos)
        # Someone else pushes to the protocol branch meanwhile.
        other = tmp_path / "other"
        git("clone", "--quiet", "--branch", run.branch_name, str(repos.origin), str(other))
        (other / "theirs.txt").write_text("theirs\n")
        git("add", "-A", cwd=other)
        git("-c", "user.name=B", "-c", "user.email=b@c.d", "commit", "-qm", "theirs", cwd=other)
        git("push", "--quiet", "origin", run.branch_name, cwd=other)
        await controls.retry_step(svc, plan[0].id, note="try again")
        await _until(svc, run.id, "blocked")

        async def failed():
            _, current = await _state(svc, run.id)
            return current[0].status is S.FAILED and current[0].version > plan[0].version + 1

        await wait_for(failed, what="the step to fail")
        _, plan = await _state(svc, run.id)
        executions = await _executions(svc, plan[0].id)
    assert executions == 2, "one for the first try, one for the retry; none for the rejected push"
    assert "non-fast-forward" in (plan[0].last_error or "")
    assert _subjects(repos, run.branch_name)[0] == "theirs"


async def test_step_max_attempts_is_enforced(database_url, tmp_path, monkeypatch):
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_QA_FAIL", "1")
    settings = workflow_settings(tmp_path, step_max_attempts=1)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        run, plan = await _blocked_by_qa(svc, repos)
        with pytest.raises(ConflictError, match="TASKSGODZILLA_STEP_MAX_ATTEMPTS=1"):
            await controls.retry_step(svc, plan[0].id)
        # A retry that does not go through the operator (a fix-CI run) meets the same limit.
        async with svc.database.transaction() as conn:
            step = await move_step(conn, plan[0].id, S.PENDING, expected_version=plan[0].version)
            current = await protocols.get(conn, run.id)
            await move_protocol(conn, run.id, P.RUNNING, expected_version=current.version)
        await execution.execute_step(svc, step.id)
        run, plan = await _state(svc, run.id)
    assert plan[0].status is S.FAILED
    assert "tried 1 times (TASKSGODZILLA_STEP_MAX_ATTEMPTS=1)" in (plan[0].last_error or "")
    assert run.status is P.BLOCKED
