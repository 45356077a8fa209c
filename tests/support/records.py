"""Records as the store hands them out, built in memory for tests of pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.records import Project, ProtocolRun, StepRun

NOW = datetime(2024, 5, 1, tzinfo=UTC)
A, B, C = "a" * 40, "b" * 40, "c" * 40


def project(**fields) -> Project:
    base = dict(
        id=1, name="shop", organisation_id=1, git_url=None, local_path="/srv/shop", base_branch="main",
        ci_provider="github", status="ready", planning_engine=None, planning_model=None,
        execution_engine=None, execution_model=None, qa_engine=None, qa_model=None, policy_pack_key=None,
        policy_pack_version=None, policy_overrides={}, policy_repo_local_enabled=False, created_at=NOW,
        updated_at=NOW, version=1,
    )  # fmt: skip
    return Project(**(base | fields))


def run(**fields) -> ProtocolRun:
    base = dict(
        id=7, project_id=1, number=1, name="0001-add-login", title="Add login", description="",
        status="running",
        base_branch="main", branch_name="0001-add-login", protocol_root=None, head_sha=B,
        pr_url=None, pr_number=None, planning_engine=None, planning_model=None, execution_engine=None,
        execution_model=None, qa_engine=None, qa_model=None, planning_prompt_version=None, plan_attempts=1,
        summary=None, last_error=None, policy_pack_key=None, policy_pack_version=None,
        policy_effective_hash=None, correlation_id="run-7", started_at=NOW, finished_at=None,
        created_at=NOW, updated_at=NOW,
        version=3,
    )  # fmt: skip
    return ProtocolRun(**(base | fields))


def step(index: int = 1, **fields) -> StepRun:
    base = dict(
        id=10 + index, protocol_run_id=7, step_index=index, name=f"Part {index}", step_file=f"{index:02d}.md",
        status="needs_qa", engine=None, model=None, qa_engine=None, qa_model=None, prompt_version=None,
        qa_prompt_version=None, attempts=1, commit_sha=None, ci_status=None, qa_verdict=None, summary=None,
        last_error=None, started_at=NOW, finished_at=None, created_at=NOW, updated_at=NOW, version=2,
    )  # fmt: skip
    return StepRun(**(base | fields))
