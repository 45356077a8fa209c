"""The database schema, as SQLAlchemy Core tables. Alembic migrations must match this (a test checks).

Statuses are text with CHECK constraints built from the domain enums, so a new status is a migration,
never a silent surprise. Every list the API and console page through has an index ending in its
keyset cursor: `id`, or `txid, id` for events.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType

from app.domain.records import AgentRunStatus, ProjectStatus, Stage
from app.domain.statuses import ProtocolStatus, StepStatus

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class XID8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (asyncpg reads and writes it as an int)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "XID8"


ischema_names["xid8"] = XID8  # so reflection (Alembic's model check) knows the column's type


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_known")


def _id() -> Column:
    return Column("id", BigInteger, Identity(always=True), primary_key=True)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def _engine_choices() -> list[Column]:
    return [
        Column(f"{stage}_{what}", Text)
        for stage in ("planning", "execution", "qa")
        for what in ("engine", "model")
    ]


def _version() -> Column:
    return Column("version", Integer, nullable=False, server_default=text("1"))


# Tenants: a token (SHA-256 kept) reaches its organisation's projects; migration 0011 seeds `default`.
organisations = Table(
    "organisations",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("slug", Text, nullable=False),
    Column("token_hash", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("name"),
    UniqueConstraint("slug"),
    UniqueConstraint("token_hash"),
)

projects = Table(
    "projects",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("git_url", Text),
    Column("local_path", Text),
    Column("base_branch", Text, nullable=False, server_default="main"),
    Column("ci_provider", Text),
    Column("status", Text, nullable=False, server_default=ProjectStatus.PENDING.value),
    *_engine_choices(),
    # The project's policy pack: its key, and its version (NULL: the latest active version).
    Column("policy_pack_key", Text, server_default="default"),
    Column("policy_pack_version", Text),
    Column("policy_overrides", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("policy_repo_local_enabled", Boolean, nullable=False, server_default=text("false")),
    # Strict mode: the pack's blocking finding codes block planning and execution.
    Column("policy_strict", Boolean, nullable=False, server_default=text("false")),
    # SHA-256 of the project's own API token (X-Project-Token); the token itself is never stored.
    Column("api_token_hash", Text),
    # Last protocol number handed out: the row lock on increment makes NNNN unique without races.
    Column("protocol_counter", Integer, nullable=False, server_default=text("0")),
    # CI and forges: `owner/name` on the forge (else read from git_url); fix-CI runs a step may get.
    Column("forge_repo", Text),
    Column("fix_ci_attempts", Integer),
    Column("host", Text),
    Column("intake_label", Text),
    Column("intake_blocked_label", Text),
    Column("organisation_id", BigInteger, ForeignKey("organisations.id"), nullable=False),
    *_timestamps(),
    _version(),
    UniqueConstraint("name"),
    UniqueConstraint("api_token_hash"),
    # Two projects in one repository would check their protocol branches out over each other.
    UniqueConstraint("local_path"),
    _one_of("status", ProjectStatus),
    CheckConstraint("git_url IS NOT NULL OR local_path IS NOT NULL", name="has_source"),
    CheckConstraint("fix_ci_attempts BETWEEN 0 AND 10", name="fix_ci_attempts_range"),
    Index(None, "organisation_id", "id"),
)

protocol_runs = Table(
    "protocol_runs",
    metadata,
    _id(),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default=ProtocolStatus.PENDING.value),
    Column("base_branch", Text, nullable=False),
    Column("branch_name", Text),
    Column("protocol_root", Text),
    Column("head_sha", Text),
    Column("pr_url", Text),
    Column("pr_number", Integer),
    Column("published_sha", Text),
    *_engine_choices(),
    Column("planning_prompt_version", Text),
    Column("plan_attempts", Integer, nullable=False, server_default=text("0")),
    Column("summary", Text),
    Column("last_error", Text),
    Column("policy_pack_key", Text),
    Column("policy_pack_version", Text),
    Column("policy_effective_hash", Text),
    Column("policy_effective", JSONB),  # the merged policy the run was planned under
    Column("correlation_id", Text, nullable=False),  # the request's that created it: app/store/events.py
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    *_timestamps(),
    _version(),
    UniqueConstraint("project_id", "number"),
    # Lets events and agent runs prove their protocol run belongs to their project.
    UniqueConstraint("id", "project_id"),
    _one_of("status", ProtocolStatus),
    Index(None, "project_id", "id"),
    Index(None, "project_id", "status", "id"),
    Index(None, "status", "id"),
    Index(None, "project_id", "branch_name"),
    # (and trigram indexes of title and name for search: app/store/search_indexes.py)
)

step_runs = Table(
    "step_runs",
    metadata,
    _id(),
    Column("protocol_run_id", BigInteger, ForeignKey("protocol_runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("step_file", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=StepStatus.PENDING.value),
    Column("engine", Text),
    Column("model", Text),
    Column("qa_engine", Text),
    Column("qa_model", Text),
    Column("prompt_version", Text),
    Column("qa_prompt_version", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("commit_sha", Text),
    Column("ci_status", Text),
    Column("qa_verdict", Text),
    Column("summary", Text),
    Column("last_error", Text),
    # What the operator asked for when retrying (the next execution's prompt carries it, then it goes).
    Column("operator_note", Text),
    Column("critical", Boolean, nullable=False, server_default=text("false")),  # QA takes two opinions
    # Which execution holds the step: a job taking it over writes its own, fencing off a worker that
    # froze and came back (app/store/steps.py: hold_lease).
    Column("lease", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    *_timestamps(),
    _version(),
    UniqueConstraint("protocol_run_id", "step_index"),
    UniqueConstraint("id", "protocol_run_id"),
    _one_of("status", StepStatus),
    Index(None, "status", "id"),
    Index(None, "commit_sha"),
)

events = Table(
    "events",
    metadata,
    _id(),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("protocol_run_id", BigInteger),
    Column("step_run_id", BigInteger),
    # Compared byte by byte, so a type prefix (`step.`) is a range of its index: app/store/events.py.
    Column("event_type", Text(collation="C"), nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("correlation_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The inserting transaction: events are read in (txid, id) order, handed out only once every
    # older transaction has finished (app/store/events.py says why id order alone loses events).
    Column("txid", XID8, nullable=False, server_default=func.pg_current_xact_id()),
    ForeignKeyConstraint(
        ["protocol_run_id", "project_id"],
        ["protocol_runs.id", "protocol_runs.project_id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["step_run_id", "protocol_run_id"],
        ["step_runs.id", "step_runs.protocol_run_id"],
        ondelete="CASCADE",
    ),
    CheckConstraint("step_run_id IS NULL OR protocol_run_id IS NOT NULL", name="step_has_protocol"),
    Index(None, "txid", "id"),
    Index(None, "project_id", "txid", "id"),
    Index(None, "protocol_run_id", "txid", "id"),
    Index(None, "step_run_id", "txid", "id"),
    Index(None, "event_type", "txid", "id"),
    Index(None, "correlation_id", "txid", "id"),
)

agent_runs = Table(
    "agent_runs",
    metadata,
    _id(),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("protocol_run_id", BigInteger),
    Column("step_run_id", BigInteger),
    Column("stage", Text, nullable=False),
    Column("engine", Text, nullable=False),
    Column("model", Text),
    Column("prompt_version", Text),
    Column("status", Text, nullable=False, server_default=AgentRunStatus.RUNNING.value),
    Column("input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cached_input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("output_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("reasoning_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Numeric(14, 6)),
    Column("exit_code", Integer),
    Column("duration_ms", BigInteger),
    Column("log_path", Text),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    # Who runs it: the Procrastinate job, which try of it, on which worker (NULL outside a job). No
    # foreign keys: Procrastinate prunes dead workers, and their absence is what this is read for.
    Column("job_id", BigInteger),
    Column("job_attempt", Integer),
    Column("worker_id", BigInteger),
    ForeignKeyConstraint(
        ["protocol_run_id", "project_id"],
        ["protocol_runs.id", "protocol_runs.project_id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["step_run_id", "protocol_run_id"],
        ["step_runs.id", "step_runs.protocol_run_id"],
        ondelete="CASCADE",
    ),
    CheckConstraint("step_run_id IS NULL OR protocol_run_id IS NOT NULL", name="step_has_protocol"),
    _one_of("stage", Stage),
    _one_of("status", AgentRunStatus),
    Index(None, "step_run_id", "id"),
    Index(None, "protocol_run_id", "id"),
    Index(None, "project_id", "started_at"),
    Index("ix_agent_runs_running", "id", postgresql_where=text("status = 'running'")),
)

# Transcripts apart from agent_runs (listing runs never drags megabytes along), readable anywhere.
agent_logs = Table(
    "agent_logs",
    metadata,
    Column(
        "agent_run_id",
        BigInteger,
        ForeignKey("agent_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("content", Text, nullable=False),
    Column("truncated", Boolean, nullable=False, server_default=text("false")),
)

policy_packs = Table(
    "policy_packs",
    metadata,
    _id(),
    Column("key", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default="active"),
    Column("pack", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    *_timestamps(),
    UniqueConstraint("key", "version"),
    CheckConstraint("status IN ('draft', 'active', 'retired')", name="status_known"),
)


# Idempotency keys of POSTs that create things, each written in the transaction that created its
# resource: a retry with the key finds what the first request made instead of making it again.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("resource_id", BigInteger, nullable=False),  # what the request created (its kind: the path)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "created_at"),
)


# Every webhook delivery received, once: the unique (provider, delivery_id) is what makes a redelivery
# (or two concurrent copies) act once. `signal` is the parsed, forge-neutral content; `outcome` is
# NULL until a worker has applied it.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    Column("provider", Text, nullable=False),
    Column("delivery_id", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("signal", JSONB, nullable=False),
    Column("outcome", Text),
    Column("detail", Text, nullable=False, server_default=""),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="SET NULL")),
    Column("protocol_run_id", BigInteger, ForeignKey("protocol_runs.id", ondelete="SET NULL")),
    Column("step_run_id", BigInteger, ForeignKey("step_runs.id", ondelete="SET NULL")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("applied_at", DateTime(timezone=True)),
    UniqueConstraint("provider", "delivery_id"),
    CheckConstraint("provider IN ('github', 'gitlab')", name="provider_known"),
    CheckConstraint("outcome IN ('applied', 'ignored', 'failed')", name="outcome_known"),
    Index(None, "received_at"),
    Index(None, "protocol_run_id", "id"),
)


# A project's secrets, encrypted with the service's key (app.store.secrets): never readable from the DB alone.
project_secrets = Table(
    "project_secrets",
    metadata,
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("ciphertext", Text, nullable=False),
    *_timestamps(),
)


# Each commit a run's head moved to, as a thin git bundle (app.services.travel).
branch_bundles = Table(
    "branch_bundles",
    metadata,
    _id(),
    Column("protocol_run_id", BigInteger, ForeignKey("protocol_runs.id", ondelete="CASCADE"), nullable=False),
    Column("commit_sha", Text, nullable=False),
    Column("since_sha", Text, nullable=False),
    Column("bundle", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("protocol_run_id", "commit_sha"),
)
