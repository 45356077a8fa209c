"""Core tables: projects, protocol runs, step runs, events, agent runs, policy packs; the default pack.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:39:04.304345
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A snapshot, not an import: a migration must keep meaning what it meant when it was written.
DEFAULT_POLICY_PACK = {
    "meta": {"key": "default", "version": "1.0", "name": "Default", "description": "Baseline warnings."},
    "defaults": {"qa": {"policy": "full"}, "ci": {"required_checks": []}},
    "requirements": {
        "protocol_files": ["plan.md", "context.md", "log.md"],
        "step_sections": ["Goal", "Key files", "Sub-tasks", "Workflow"],
    },
    "enforcement": {"mode": "warn"},
}


def upgrade() -> None:
    op.create_table(
        "policy_packs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column(
            "pack",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'deprecated', 'draft')", name=op.f("ck_policy_packs_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_packs")),
        sa.UniqueConstraint("key", "version", name=op.f("uq_policy_packs_key_version")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("git_url", sa.Text(), nullable=True),
        sa.Column("local_path", sa.Text(), nullable=True),
        sa.Column("base_branch", sa.Text(), server_default="main", nullable=False),
        sa.Column("ci_provider", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("planning_engine", sa.Text(), nullable=True),
        sa.Column("planning_model", sa.Text(), nullable=True),
        sa.Column("execution_engine", sa.Text(), nullable=True),
        sa.Column("execution_model", sa.Text(), nullable=True),
        sa.Column("qa_engine", sa.Text(), nullable=True),
        sa.Column("qa_model", sa.Text(), nullable=True),
        sa.Column("policy_pack_key", sa.Text(), nullable=True),
        sa.Column("policy_pack_version", sa.Text(), nullable=True),
        sa.Column(
            "policy_overrides",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("policy_repo_local_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("protocol_counter", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'setting_up', 'awaiting_answers', 'ready', 'failed')",
            name=op.f("ck_projects_status_known"),
        ),
        sa.CheckConstraint(
            "git_url IS NOT NULL OR local_path IS NOT NULL", name=op.f("ck_projects_has_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "protocol_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("base_branch", sa.Text(), nullable=False),
        sa.Column("branch_name", sa.Text(), nullable=True),
        sa.Column("worktree_path", sa.Text(), nullable=True),
        sa.Column("protocol_root", sa.Text(), nullable=True),
        sa.Column("head_sha", sa.Text(), nullable=True),
        sa.Column("pr_url", sa.Text(), nullable=True),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        sa.Column("planning_engine", sa.Text(), nullable=True),
        sa.Column("planning_model", sa.Text(), nullable=True),
        sa.Column("execution_engine", sa.Text(), nullable=True),
        sa.Column("execution_model", sa.Text(), nullable=True),
        sa.Column("qa_engine", sa.Text(), nullable=True),
        sa.Column("qa_model", sa.Text(), nullable=True),
        sa.Column("planning_prompt_version", sa.Text(), nullable=True),
        sa.Column("plan_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("policy_pack_key", sa.Text(), nullable=True),
        sa.Column("policy_pack_version", sa.Text(), nullable=True),
        sa.Column("policy_effective_hash", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'planning', 'planned', 'running', 'paused', 'blocked', "
            "'failed', 'cancelled', 'completed')",
            name=op.f("ck_protocol_runs_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_protocol_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_runs")),
        sa.UniqueConstraint("id", "project_id", name=op.f("uq_protocol_runs_id_project_id")),
        sa.UniqueConstraint("project_id", "number", name=op.f("uq_protocol_runs_project_id_number")),
    )
    op.create_index(
        op.f("ix_protocol_runs_project_id_branch_name"),
        "protocol_runs",
        ["project_id", "branch_name"],
        unique=False,
    )
    op.create_index(
        op.f("ix_protocol_runs_project_id_id"), "protocol_runs", ["project_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_protocol_runs_project_id_status_id"),
        "protocol_runs",
        ["project_id", "status", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_protocol_runs_status_id"), "protocol_runs", ["status", "id"], unique=False)
    op.create_table(
        "step_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("protocol_run_id", sa.BigInteger(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("step_file", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("engine", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("qa_engine", sa.Text(), nullable=True),
        sa.Column("qa_model", sa.Text(), nullable=True),
        sa.Column("prompt_version", sa.Text(), nullable=True),
        sa.Column("qa_prompt_version", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("commit_sha", sa.Text(), nullable=True),
        sa.Column("ci_status", sa.Text(), nullable=True),
        sa.Column("qa_verdict", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'needs_qa', 'completed', 'failed', 'cancelled', 'blocked')",
            name=op.f("ck_step_runs_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["protocol_run_id"],
            ["protocol_runs.id"],
            name=op.f("fk_step_runs_protocol_run_id_protocol_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_runs")),
        sa.UniqueConstraint("id", "protocol_run_id", name=op.f("uq_step_runs_id_protocol_run_id")),
        sa.UniqueConstraint(
            "protocol_run_id", "step_index", name=op.f("uq_step_runs_protocol_run_id_step_index")
        ),
    )
    op.create_index(op.f("ix_step_runs_commit_sha"), "step_runs", ["commit_sha"], unique=False)
    op.create_index(op.f("ix_step_runs_status_id"), "step_runs", ["status", "id"], unique=False)
    op.create_table(
        "agent_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("protocol_run_id", sa.BigInteger(), nullable=True),
        sa.Column("step_run_id", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("engine", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("prompt_version", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "stage IN ('discovery', 'planning', 'execution', 'qa')", name=op.f("ck_agent_runs_stage_known")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'timed_out', 'cancelled')",
            name=op.f("ck_agent_runs_status_known"),
        ),
        sa.CheckConstraint(
            "step_run_id IS NULL OR protocol_run_id IS NOT NULL", name=op.f("ck_agent_runs_step_has_protocol")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_agent_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["protocol_run_id", "project_id"],
            ["protocol_runs.id", "protocol_runs.project_id"],
            name=op.f("fk_agent_runs_protocol_run_id_project_id_protocol_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_run_id", "protocol_run_id"],
            ["step_runs.id", "step_runs.protocol_run_id"],
            name=op.f("fk_agent_runs_step_run_id_protocol_run_id_step_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_runs")),
    )
    op.create_index(
        op.f("ix_agent_runs_project_id_started_at"), "agent_runs", ["project_id", "started_at"], unique=False
    )
    op.create_index(
        op.f("ix_agent_runs_protocol_run_id_id"), "agent_runs", ["protocol_run_id", "id"], unique=False
    )
    op.create_index(op.f("ix_agent_runs_step_run_id_id"), "agent_runs", ["step_run_id", "id"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("protocol_run_id", sa.BigInteger(), nullable=True),
        sa.Column("step_run_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "step_run_id IS NULL OR protocol_run_id IS NOT NULL", name=op.f("ck_events_step_has_protocol")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_events_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["protocol_run_id", "project_id"],
            ["protocol_runs.id", "protocol_runs.project_id"],
            name=op.f("fk_events_protocol_run_id_project_id_protocol_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_run_id", "protocol_run_id"],
            ["step_runs.id", "step_runs.protocol_run_id"],
            name=op.f("fk_events_step_run_id_protocol_run_id_step_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_event_type_id"), "events", ["event_type", "id"], unique=False)
    op.create_index(op.f("ix_events_project_id_id"), "events", ["project_id", "id"], unique=False)
    op.create_index(op.f("ix_events_protocol_run_id_id"), "events", ["protocol_run_id", "id"], unique=False)
    op.create_index(op.f("ix_events_step_run_id_id"), "events", ["step_run_id", "id"], unique=False)
    policy_packs = sa.table(
        "policy_packs",
        sa.column("key", sa.Text),
        sa.column("version", sa.Text),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
        sa.column("pack", postgresql.JSONB),
    )
    op.bulk_insert(
        policy_packs,
        [
            {
                "key": "default",
                "version": "1.0",
                "name": "Default",
                "description": "Baseline warnings for every project.",
                "pack": DEFAULT_POLICY_PACK,
            }
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_events_step_run_id_id"), table_name="events")
    op.drop_index(op.f("ix_events_protocol_run_id_id"), table_name="events")
    op.drop_index(op.f("ix_events_project_id_id"), table_name="events")
    op.drop_index(op.f("ix_events_event_type_id"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_agent_runs_step_run_id_id"), table_name="agent_runs")
    op.drop_index(op.f("ix_agent_runs_protocol_run_id_id"), table_name="agent_runs")
    op.drop_index(op.f("ix_agent_runs_project_id_started_at"), table_name="agent_runs")
    op.drop_table("agent_runs")
    op.drop_index(op.f("ix_step_runs_status_id"), table_name="step_runs")
    op.drop_index(op.f("ix_step_runs_commit_sha"), table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index(op.f("ix_protocol_runs_status_id"), table_name="protocol_runs")
    op.drop_index(op.f("ix_protocol_runs_project_id_status_id"), table_name="protocol_runs")
    op.drop_index(op.f("ix_protocol_runs_project_id_id"), table_name="protocol_runs")
    op.drop_index(op.f("ix_protocol_runs_project_id_branch_name"), table_name="protocol_runs")
    op.drop_table("protocol_runs")
    op.drop_table("projects")
    op.drop_table("policy_packs")
