"""What every use case needs, built once per process and handed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from app.config import GIT_ENV, Settings, agent_environment, inherited_environment
from app.engines.base import Engine, Redactor
from app.engines.registry import build_engines
from app.logs import secret_values
from app.store.database import Database


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
    redactor: Redactor
    git_env: Mapping[str, str]


def build_services(
    settings: Settings,
    database: Database,
    queue: JobQueue,
    *,
    environ: Mapping[str, str] | None = None,
    engines: Mapping[str, Engine] | None = None,
) -> Services:
    """Assemble the services; `environ` is read once here for the agents' and git's environments."""
    redactor = Redactor(secret_values(settings))
    agent_env = agent_environment(settings, environ)
    git_env = inherited_environment(GIT_ENV, environ)
    return Services(
        settings=settings,
        database=database,
        queue=queue,
        engines=engines
        if engines is not None
        else build_engines(settings, base_env=agent_env, redactor=redactor),
        redactor=redactor,
        git_env=git_env,
    )
