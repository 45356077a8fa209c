"""What every use case needs, built once per process and handed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from app.config import Settings
from app.config_environment import GIT_ENV, agent_environment, inherited_environment
from app.domain.redaction import Redactor
from app.engines.agent_user import AGENT_HOME, AgentUser, agent_user_for
from app.engines.base import Engine
from app.engines.registry import build_engines
from app.logs import named_secrets
from app.store.database import Database
from app.tracing import Tracing

OTLP_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"


class JobQueue(Protocol):
    """The job queue beyond deferring (which is `app.store.jobs.defer`, in the caller's transaction)."""

    async def abort(self, locks: list[str]) -> int:
        """Cancel waiting jobs holding one of `locks` and stop running ones; how many were asked."""
        ...

    async def pending_locks(self, queueing_locks: list[str]) -> set[str]:
        """Which of these queueing locks have a job waiting or running."""
        ...


@dataclass(frozen=True)
class Services:
    settings: Settings
    database: Database
    queue: JobQueue
    engines: Mapping[str, Engine]
    redactor: Redactor  # every known secret, by the name of its setting
    git_env: Mapping[str, str]
    agent_user: AgentUser | None = None  # who agents run as; None: this process's user
    tracing: Tracing = field(default_factory=Tracing)  # no exporter: no tracing


def build_services(
    settings: Settings,
    database: Database,
    queue: JobQueue,
    *,
    environ: Mapping[str, str] | None = None,
    engines: Mapping[str, Engine] | None = None,
    tracing: Tracing | None = None,
) -> Services:
    """Assemble the services; `environ` is read once here for the agents' and git's environments
    (and OTEL_EXPORTER_OTLP_ENDPOINT when TASKSGODZILLA_OTLP_ENDPOINT is unset).

    As root, this is where the agent user is resolved (and created on first use)."""
    redactor = Redactor(named_secrets(settings, database.url))
    agent_env = agent_environment(settings, environ)
    git_env = inherited_environment(GIT_ENV, environ)
    user = agent_user_for(settings.agent_user, home=settings.data_dir / AGENT_HOME)
    return Services(
        settings=settings,
        database=database,
        queue=queue,
        engines=engines if engines is not None else build_engines(settings, base_env=agent_env, user=user),
        redactor=redactor,
        git_env=git_env,
        agent_user=user,
        tracing=tracing if tracing is not None else Tracing.exporting_to(otlp_endpoint(settings, environ)),
    )


def otlp_endpoint(settings: Settings, environ: Mapping[str, str] | None) -> str | None:
    """Where traces go: the setting, else the standard OpenTelemetry variable; None: nowhere."""
    standard = inherited_environment([OTLP_ENDPOINT_VARIABLE], environ).get(OTLP_ENDPOINT_VARIABLE)
    return settings.otlp_endpoint or standard
