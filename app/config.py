"""Settings: every `TASKSGODZILLA_*` variable, read once at start-up and passed down.

Nothing else in the code reads `os.environ`. Build with `load_settings()`, which turns a validation
failure into one `ConfigError` line naming the variable.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError

ENV_PREFIX = "TASKSGODZILLA_"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class EngineName(StrEnum):
    CODEX = "codex"
    CLAUDE = "claude"
    COMMAND = "command"


class BudgetMode(StrEnum):
    """What a breached budget does: `warn` records an event, `enforce` also stops the work."""

    WARN = "warn"
    ENFORCE = "enforce"


def _default_data_dir() -> Path:
    # A service run as root keeps its state where system services do, not in /root.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/tasksgodzilla")
    return platformdirs.user_data_path("tasksgodzilla")


class Settings(BaseSettings):
    """The effective configuration of one process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # --- storage -------------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL. Unset: an embedded PostgreSQL runs in the data dir.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description=(
            "Where the embedded database, logs and artifacts live. Default: "
            "~/.local/share/tasksgodzilla, or /var/lib/tasksgodzilla as root."
        ),
    )
    projects_root: Path | None = Field(
        None,
        description="Where project repositories are cloned. Unset: <data dir>/projects.",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="Database connections per process.")
    migrate_on_start: bool = Field(True, description="Apply migrations when `serve` starts.")

    # --- HTTP ----------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8011, ge=1, le=65535, description="Port `serve` listens on.")
    api_base: str | None = Field(
        None, description="Public base URL of this service, for CI scripts and links."
    )
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted, in bytes.")

    # --- security ------------------------------------------------------------------------------
    api_token: SecretStr | None = Field(
        None, description="Bearer token required on every endpoint but /health. Unset: open API."
    )
    webhook_token: SecretStr | None = Field(
        None, description="Shared secret that signs CI callbacks from scripts/ci/report.sh."
    )
    github_webhook_secret: SecretStr | None = Field(
        None, description="Secret GitHub signs webhooks with (X-Hub-Signature-256)."
    )
    gitlab_webhook_token: SecretStr | None = Field(
        None, description="Token GitLab sends with webhooks (X-Gitlab-Token)."
    )
    github_token: SecretStr | None = Field(None, description="GitHub API token for opening PRs.")
    gitlab_token: SecretStr | None = Field(None, description="GitLab API token for opening MRs.")

    # --- workers -------------------------------------------------------------------------------
    auto_qa_after_exec: bool = Field(True, description="Queue QA as soon as a step has executed.")
    auto_qa_on_ci: bool = Field(False, description="Queue QA when a CI success webhook arrives.")
    job_max_attempts: int = Field(3, ge=1, le=20, description="Tries of a job before it fails.")
    retry_backoff_seconds: float = Field(
        5.0, gt=0, description="First retry delay; doubles each try, with jitter."
    )
    retry_backoff_max_seconds: float = Field(300.0, gt=0, description="Longest retry delay.")
    step_max_attempts: int = Field(3, ge=1, le=20, description="Executions of one step, retries included.")
    stuck_step_seconds: int = Field(
        7200, ge=60, description="A step `running` longer than this is failed by the watchdog."
    )

    # --- agents --------------------------------------------------------------------------------
    planning_engine: EngineName = Field(EngineName.CODEX, description="Engine that plans protocols.")
    planning_model: str = Field("gpt-5.1-codex", min_length=1, description="Model that plans.")
    execution_engine: EngineName = Field(EngineName.CODEX, description="Engine that executes steps.")
    execution_model: str = Field("gpt-5.1-codex", min_length=1, description="Model that executes.")
    qa_engine: EngineName = Field(EngineName.CODEX, description="Engine that checks steps.")
    qa_model: str = Field("gpt-5.1-codex", min_length=1, description="Model that checks steps.")
    codex_bin: str = Field("codex", min_length=1, description="Codex CLI executable.")
    claude_bin: str = Field("claude", min_length=1, description="Claude Code CLI executable.")
    agent_timeout_seconds: int = Field(
        3600, ge=1, description="Wall-clock limit of one agent run; the process group is killed."
    )
    git_timeout_seconds: int = Field(300, ge=1, description="Wall-clock limit of one git command.")

    # --- budgets -------------------------------------------------------------------------------
    max_tokens_per_step: int | None = Field(None, ge=1, description="Token ceiling of one step.")
    max_tokens_per_protocol: int | None = Field(None, ge=1, description="Token ceiling of one protocol run.")
    max_cost_per_project_usd: float | None = Field(
        None, gt=0, description="Spending ceiling of one project, in US dollars."
    )
    budget_mode: BudgetMode = Field(BudgetMode.ENFORCE, description="`warn` or `enforce` budgets.")

    # --- logging -------------------------------------------------------------------------------
    log_format: LogFormat = Field(LogFormat.CONSOLE, description="`json` or `console` logs.")
    log_level: str = Field("INFO", description="Lowest level logged: DEBUG, INFO, WARNING, ERROR.")

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in POSTGRES_SCHEMES:
            raise ValueError(f"must be a PostgreSQL URL (postgresql://…), not {scheme or 'no'} scheme")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _backoff_order(self) -> Settings:
        if self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            raise ValueError(
                f"{ENV_PREFIX}RETRY_BACKOFF_MAX_SECONDS must be at least {ENV_PREFIX}RETRY_BACKOFF_SECONDS"
            )
        return self

    @property
    def resolved_projects_root(self) -> Path:
        return self.projects_root or self.data_dir / "projects"

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; an invalid value raises one ConfigError naming its variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{env_name(field)}: {message}" if field else message)
    return "invalid setting " + "; ".join(problems)


def masked_settings(settings: Settings) -> dict[str, str]:
    """Every setting as `VARIABLE -> printable value`, secrets replaced by a mask."""
    shown: dict[str, str] = {}
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            text = mask_url(value.get_secret_value()) if field == "database_url" else "********"
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = "" if value is None else str(value)
        shown[env_name(field)] = text
    return shown


def mask_url(url: str) -> str:
    """A URL with its password replaced, safe for logs and screens."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
