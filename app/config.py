"""Settings: every `TASKSGODZILLA_*` variable, read once at start-up and passed down.

Nothing else in the code reads `os.environ`. Build with `load_settings()`, which turns a validation
failure into one `ConfigError` line naming the variable.
"""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import config_checks as checks
from app.config_paths import default_data_dir
from app.domain.cron import interval_cron
from app.domain.fallbacks import StageFallbacks
from app.domain.refnames import check_branch_pattern
from app.domain.selection import EngineName
from app.domain.usage import DEFAULT_MODEL_PRICES, BudgetMode, ModelPrice
from app.errors import ConfigError

ENV_PREFIX = "TASKSGODZILLA_"
MIN_SECRET_LENGTH = 16  # shared secrets: long enough that guessing them is hopeless
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


# What an agent may inherit from the service's environment: its own credentials and locale, never ours.
DEFAULT_AGENT_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "TMPDIR",
    "CODEX_HOME", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "CLAUDE_CONFIG_DIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip


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
        default_factory=default_data_dir,
        description=(
            "Where the embedded database, logs and artifacts live. Default: "
            "~/.local/share/tasksgodzilla, or /var/lib/tasksgodzilla as root."
        ),
    )
    projects_root: Path | None = Field(
        None, description="Where project repositories are cloned. Unset: <data dir>/projects."
    )
    local_path_roots: Annotated[list[Path] | None, NoDecode] = Field(
        None,
        description="Comma-separated folders a project's `local_path` must be inside (symlinks resolved). "
        "Unset: the service user's home folder (none if `/`). Empty: no project is registered by path.",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="Database connections per process.")
    migrate_on_start: bool = Field(True, description="Apply migrations when `serve` starts.")

    # --- HTTP ----------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8011, ge=1, le=65535, description="Port `serve` listens on.")
    api_base: str | None = Field(
        None,
        description="Public base URL of this service: PR/MR descriptions link to the run's console page, "
        "and the CLI (but serve, worker, migrate, config) acts through its API, not a local database.",
    )
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted, in bytes.")

    # --- security ------------------------------------------------------------------------------
    api_token: SecretStr | None = Field(
        None, description="Bearer token required on every endpoint but /health. Unset: open API."
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs web console sessions. Unset: derived from the API token, so rotating "
        "the token logs everyone out.",
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="How long a console login lasts.")
    login_failures_per_minute: int = Field(
        10, ge=1, description="Failed console sign-ins a minute per client address (x10 in all) before 429."
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
    secret_key: SecretStr | None = Field(
        None, description="Encrypts stored git credentials. Unset: <data dir>/secret.key."
    )
    github_token: SecretStr | None = Field(None, description="GitHub API token for opening PRs.")
    gitlab_token: SecretStr | None = Field(None, description="GitLab API token for opening MRs.")

    # --- workers -------------------------------------------------------------------------------
    run_worker: bool = Field(True, description="`serve` also runs a job worker in its event loop.")
    host_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
        description="This machine's name (unset: its host name). A project registered by local path "
        "lives on the machine that registered it; its jobs go to queue `host:<name>`, which only "
        "that machine's workers take.",
    )
    worker_concurrency: int = Field(4, ge=1, le=64, description="Jobs one worker runs at once.")
    worker_poll_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often an idle worker looks for jobs due now (retries, missed wake-ups).",
    )
    worker_heartbeat_seconds: float = Field(
        10.0, gt=0, description="How often a worker tells the database it is alive."
    )
    stalled_after_seconds: float = Field(
        60.0, gt=0, description="A job whose worker has been silent this long is retried elsewhere."
    )
    scheduler_interval_seconds: int = Field(
        15,
        ge=1,
        le=3600,
        description=(
            "How often the periodic duties run (retry stalled jobs, re-queue missing work, block stuck "
            "steps): a divisor of 60, or whole minutes dividing an hour (cron ticks)."
        ),
    )
    intake_poll_seconds: int = Field(300, ge=1, le=3600, description="Seconds between issue intake polls.")
    setup_discovery: bool = Field(
        False, description="Project setup runs a read-only agent that describes the repository."
    )
    setup_wait_for_answers: bool = Field(
        False, description="A new project waits for the operator to answer its setup questions."
    )
    setup_git_config: bool = Field(
        False,
        description="Setup writes the commit identity (GIT_USER_NAME/EMAIL) into the repository's config "
        "and points a folder's `origin` at the project's git URL, when it has one.",
    )
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
    engine_fallbacks: dict[Literal["planning", "execution", "qa"], StageFallbacks] = Field(
        default_factory=dict,
        description="Per stage, what is tried in order when its agent fails for an engine reason, JSON: "
        '`{"execution": ["claude:claude-sonnet-4-5", "command"]}` (`engine` or `engine:model`).',
    )
    codex_bin: str = Field("codex", min_length=1, description="Codex CLI executable.")
    claude_bin: str = Field("claude", min_length=1, description="Claude Code CLI executable.")
    agent_timeout_seconds: int = Field(
        3600, ge=1, description="Wall-clock limit of one agent run; the process group is killed."
    )
    worktree_retention_hours: int = Field(
        168,
        ge=0,
        description="A finished run's worktree is removed from each machine's disk this long after the "
        "run finished; its branch stays (0: keep worktrees).",
    )
    agent_silence_seconds: int = Field(
        900,
        ge=0,
        description="An agent that prints nothing for this long is stalled: killed and retried with the "
        "reason, while a long run that keeps talking goes on (0: no limit).",
    )
    agent_max_output_bytes: int = Field(
        16 * 1024 * 1024, ge=65536, description="Most output kept from one agent run; the rest is cut."
    )
    agent_bypass_sandbox: bool = Field(
        False, description="Let agents run without their sandbox (only inside an isolated container)."
    )
    claude_permission_mode: Literal[
        "acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan"
    ] = Field("acceptEdits", description="Claude Code `--permission-mode` for step execution.")
    claude_allowed_tools: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Claude Code tool rules allowed in execution, e.g. `Bash(pytest:*)`.",
    )
    codex_config: list[str] = Field(
        default_factory=list,
        description='JSON list of `key=value` overrides given to codex as `-c`, e.g. `["model_provider=x"]`.',
    )
    command_agent: list[str] = Field(
        default_factory=list,
        description='JSON argument list of the `command` engine\'s executable, e.g. `["./agent", "--fast"]`.',
    )
    agent_user: str | None = Field(
        None,
        description="OS user agents run as. Unset: `tasksgodzilla-agent` (created on first use) when the "
        "service runs as root, else the service's own user; `root` keeps agents as root.",
    )
    agent_env_passthrough: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_AGENT_ENV),
        description="Comma-separated variables an agent inherits; TASKSGODZILLA_* never are.",
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_MODEL_PRICES),
        description=(
            'USD per million tokens, JSON: {"model": {"input": 1.25, "cached_input": 0.125, "output": 10}}.'
        ),
    )

    # --- git -----------------------------------------------------------------------------------
    git_timeout_seconds: int = Field(300, ge=1, description="Wall-clock limit of one git command.")
    git_allow_local_remotes: bool = Field(
        False, description="Accept local paths and file:// URLs as project remotes (https and ssh always)."
    )
    git_allow_private_remotes: bool = Field(
        False, description="Accept remotes on private addresses (loopback too)."
    )
    git_user_name: str = Field("TasksGodzilla", min_length=1, description="Author name of agent commits.")
    git_user_email: str = Field(
        "tasksgodzilla@localhost", min_length=3, description="Author email of agent commits."
    )
    branch_pattern: str = Field(
        "tasksgodzilla/{project}/{name}",
        description=(
            "Protocol branch name; `{name}` is NNNN-slug, `{number}`, `{slug}` and `{project}` also work. "
            "Without `{project}`, two projects cannot share a remote (numbers are per project)."
        ),
    )

    # --- budgets -------------------------------------------------------------------------------
    max_tokens_per_step: int | None = Field(None, ge=1, description="Token ceiling of one step.")
    max_tokens_per_protocol: int | None = Field(None, ge=1, description="Token ceiling of one protocol run.")
    max_cost_per_project_usd: float | None = Field(None, gt=0, description="USD ceiling of one project.")
    max_tokens_per_project_month: int | None = Field(
        None, ge=1, description="Token ceiling of one project in a calendar month (UTC)."
    )
    max_cost_per_project_month_usd: float | None = Field(
        None, gt=0, description="USD ceiling of one project in a calendar month (UTC)."
    )
    budget_mode: BudgetMode = Field(
        BudgetMode.ENFORCE,
        description="`enforce` refuses runs budgets cannot cover, `warn` only records, `off` skips.",
    )
    budget_estimate_floor_tokens: int = Field(
        1000, ge=0, description="Tokens expected of a stage's agent run when the project has none to go by."
    )
    unpriced_usd_per_1k_tokens: float | None = Field(
        None, ge=0, description="USD per 1k tokens of an unpriced model's runs, for USD budgets (unset: 0)."
    )

    # --- logging -------------------------------------------------------------------------------
    log_format: LogFormat = Field(LogFormat.CONSOLE, description="`json` or `console` logs.")
    log_level: str = Field("INFO", description="Lowest level logged: DEBUG, INFO, WARNING, ERROR.")
    otlp_endpoint: str | None = Field(
        None,
        description="OpenTelemetry collector base URL (OTLP/HTTP); traces go to its `/v1/traces`. "
        "Unset: the standard OTEL_EXPORTER_OTLP_ENDPOINT; neither set: no tracing.",
    )

    # --- CI and forges -------------------------------------------------------------------------
    github_api_url: str = Field("https://api.github.com", description="GitHub REST API base URL.")
    gitlab_api_url: str = Field("https://gitlab.com/api/v4", description="GitLab REST API (v4) base URL.")
    forge_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per-project forge tokens, JSON {"project name": "token"}; else the GitHub/GitLab token.',
    )
    forge_timeout_seconds: float = Field(30.0, gt=0, le=600, description="Limit of one forge API call.")
    webhook_max_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest webhook body accepted, in bytes."
    )
    fix_ci_attempts: int = Field(
        0, ge=0, le=10, description="Automatic fix-CI runs of a step (per project too)."
    )
    ci_log_tail_chars: int = Field(
        8000, ge=0, le=200_000,
        description="How much of a failed CI job's log (its end) the fix-CI prompt gets; 0 fetches none.",
    )  # fmt: skip
    review_rounds: int = Field(
        3, ge=0, le=20,
        description="Review-comment fix rounds per run; past it the run blocks for a person.",
    )  # fmt: skip
    review_text_max_chars: int = Field(
        12_000, ge=500, le=200_000,
        description="How much of reviewers' comments (all of one round) a fix prompt gets.",
    )  # fmt: skip

    # --- notifications -------------------------------------------------------------------------
    public_url: str | None = Field(None, description="The service's address in notification links.")
    notify_allow_private_urls: bool = Field(False, description="Allow webhooks on private addresses.")
    notify_timeout_seconds: float = Field(10.0, gt=0, le=120, description="Limit of one sending.")
    notify_max_attempts: int = Field(5, ge=1, le=20, description="Tries of one notification.")
    smtp_host: str | None = Field(None, description="SMTP server for e-mail notifications.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port (`tls`: often 465).")
    smtp_security: Literal["starttls", "tls", "none"] = Field("starttls", description="SMTP TLS.")
    smtp_user: str | None = Field(None, description="SMTP login (unset: no login).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str | None = Field(None, description="From address of e-mail notifications.")

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        return checks.postgres_url(value, POSTGRES_SCHEMES)

    @field_validator("local_path_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path] | None) -> list[Path] | None:
        return checks.absolute_folders(value)

    @field_validator("api_token", "session_secret", "webhook_token", "github_webhook_secret",
                     "gitlab_webhook_token", "secret_key")  # fmt: skip
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return checks.strong_secret(value, MIN_SECRET_LENGTH)

    @field_validator("agent_env_passthrough", "claude_allowed_tools", "local_path_roots", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("branch_pattern")
    @classmethod
    def _names_the_protocol(cls, value: str) -> str:
        return check_branch_pattern(value)

    @field_validator("github_api_url", "gitlab_api_url", "api_base", "otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return checks.http_url(value)

    @field_validator("scheduler_interval_seconds", "intake_poll_seconds")
    @classmethod
    def _cron_interval(cls, value: int) -> int:
        interval_cron(value)  # raises ValueError naming the intervals a cron line can keep
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        return checks.log_level(value)

    @model_validator(mode="after")
    def _ordered(self) -> Settings:
        checks.ordered(self, ENV_PREFIX)
        return self

    @property
    def machine(self) -> str:
        """This machine's name: `host_name`, else the host name."""
        return self.host_name or socket.gethostname()

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
        raise ConfigError(checks.describe(exc, env_name)) from None
