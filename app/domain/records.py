"""What the store hands out: immutable records of projects, runs, events and agent runs.

The store maps its rows to these in one place (`model_validate(row)`); services and the web layer
never see a database row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.domain.statuses import ProtocolStatus, StepStatus


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class ProjectStatus(StrEnum):
    """Where a project's setup stands (set by the setup job, not a guarded machine)."""

    PENDING = "pending"
    SETTING_UP = "setting_up"
    AWAITING_ANSWERS = "awaiting_answers"
    READY = "ready"
    FAILED = "failed"


class AgentRunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Stage(StrEnum):
    """Which kind of work an agent does; engines and models are chosen per stage."""

    DISCOVERY = "discovery"
    PLANNING = "planning"
    EXECUTION = "execution"
    QA = "qa"


class Organisation(Record):
    """A tenant: its projects, and a token that reaches them (kept as a hash, never shown here)."""

    id: int
    name: str
    slug: str
    created_at: datetime


class Project(Record):
    id: int
    name: str
    organisation_id: int
    git_url: str | None
    local_path: str | None
    base_branch: str
    ci_provider: str | None
    status: ProjectStatus
    planning_engine: str | None
    planning_model: str | None
    execution_engine: str | None
    execution_model: str | None
    qa_engine: str | None
    qa_model: str | None
    policy_pack_key: str | None
    policy_pack_version: str | None
    policy_overrides: dict[str, Any]
    policy_repo_local_enabled: bool
    policy_strict: bool = False  # the pack's blocking findings block planning and execution
    # CI and forges: the repository as its forge names it (else read from git_url), and how many
    # automatic fix-CI runs a step may get (None: TASKSGODZILLA_FIX_CI_ATTEMPTS).
    forge_repo: str | None = None
    fix_ci_attempts: int | None = None
    # The machine a project registered by local path lives on (its jobs run there); None: any.
    host: str | None = None
    # Issue intake: open issues with `intake_label` become runs; with `intake_blocked_label` they wait.
    intake_label: str | None = None
    intake_blocked_label: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int


class ProtocolRun(Record):
    id: int
    project_id: int
    number: int
    name: str
    title: str
    description: str
    status: ProtocolStatus
    base_branch: str
    branch_name: str | None
    protocol_root: str | None
    head_sha: str | None
    pr_url: str | None
    pr_number: int | None
    published_sha: str | None = None  # the head the PR/MR was last published at
    planning_engine: str | None
    planning_model: str | None
    execution_engine: str | None
    execution_model: str | None
    qa_engine: str | None
    qa_model: str | None
    planning_prompt_version: str | None
    plan_attempts: int
    summary: str | None
    last_error: str | None
    policy_pack_key: str | None
    policy_pack_version: str | None
    policy_effective_hash: str | None
    correlation_id: str  # the request's that created it; every job of the run logs under it
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class StepRun(Record):
    id: int
    protocol_run_id: int
    step_index: int
    name: str
    step_file: str
    status: StepStatus
    engine: str | None
    model: str | None
    qa_engine: str | None
    qa_model: str | None
    prompt_version: str | None
    qa_prompt_version: str | None
    attempts: int
    commit_sha: str | None
    ci_status: str | None
    qa_verdict: str | None
    summary: str | None
    last_error: str | None
    operator_note: str | None = None
    critical: bool = False  # the operator asked for a second QA opinion (app/domain/second_opinion.py)
    lease: str | None = None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class Event(Record):
    id: int
    project_id: int
    protocol_run_id: int | None
    step_run_id: int | None
    event_type: str
    message: str
    payload: dict[str, Any]
    correlation_id: str | None
    created_at: datetime


class AuditEvent(Record):
    """One operator action in the audit trail: who (`actor_*`, `via`), what, and where; it outlives
    its project (whose name is kept), run and step."""

    id: int
    event_id: int | None
    event_type: str
    message: str
    payload: dict[str, Any]
    actor_kind: str
    actor_id: str
    actor_label: str
    via: str
    organisation_id: int | None
    project_id: int | None
    project_name: str | None
    protocol_run_id: int | None
    step_run_id: int | None
    correlation_id: str | None
    created_at: datetime


class AgentRun(Record):
    id: int
    project_id: int
    protocol_run_id: int | None
    step_run_id: int | None
    stage: Stage
    engine: str
    model: str | None
    prompt_version: str | None
    status: AgentRunStatus
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    exit_code: int | None
    duration_ms: int | None
    log_path: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    job_id: int | None = None  # the Procrastinate job running it, and its worker (None outside jobs)
    worker_id: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_known(self) -> bool:
        """False when `cost_usd` is null: a model without a price (or a run not finished) is not free,
        its cost is unknown."""
        return self.cost_usd is not None


class PolicyPack(Record):
    id: int
    key: str
    version: str
    name: str
    description: str
    status: str
    pack: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
