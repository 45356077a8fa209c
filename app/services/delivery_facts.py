"""What applying a delivery needs from the forge, asked before its transaction opens (a slow forge
never holds the run's rows locked): a failed CI job's log for each project that may fix CI, and a
GitLab reviewer's access level. Asked by the job that applies the delivery, never the webhook request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain.ci import (
    AnySignal,
    CiResult,
    CiSignal,
    Provider,
    ReviewSignal,
    RunCiSignal,
    fix_ci_limit,
    serves_repository,
)
from app.domain.records import Project
from app.errors import NotFoundError
from app.forges.gitlab_client import GitLabClient
from app.services.ci_logs import failed_job_facts
from app.services.context import Services
from app.services.forges import forge_for
from app.store import projects, protocols


@dataclass(frozen=True)
class ForgeFacts:
    ci_logs: dict[int, dict[str, Any]] = field(default_factory=dict)  # project id → log facts
    access: dict[int, int | None] = field(default_factory=dict)  # project id → the reviewer's level


async def forge_facts(svc: Services, signal: AnySignal) -> ForgeFacts:
    """The forge's answers a delivery's application may use (none for most deliveries)."""
    if isinstance(signal, RunCiSignal):
        return await _origin_facts(svc, signal)
    failed_ci = isinstance(signal, CiSignal) and signal.result is CiResult.FAILED
    gitlab_review = isinstance(signal, ReviewSignal) and signal.provider is Provider.GITLAB
    if not (failed_ci or gitlab_review):
        return ForgeFacts()
    assert isinstance(signal, CiSignal | ReviewSignal)
    async with svc.database.read() as conn:
        candidates = await projects.forge_candidates(conn, signal.repository)
    owners = [p for p in candidates if serves_repository(p, signal.provider, signal.repository)]
    facts = ForgeFacts()
    for project in owners:
        if isinstance(signal, CiSignal) and fix_ci_limit(project, svc.settings.fix_ci_attempts) > 0:
            facts.ci_logs[project.id] = await failed_job_facts(svc, project, signal.sha)
        elif isinstance(signal, ReviewSignal):
            facts.access[project.id] = await _gitlab_access(svc, project, signal.author_id)
    return facts


async def _origin_facts(svc: Services, signal: RunCiSignal) -> ForgeFacts:
    """The original report.sh's failure: the log of the run's head commit (what it is applied to)."""
    if signal.result is not CiResult.FAILED:
        return ForgeFacts()
    try:
        async with svc.database.read() as conn:
            run = await protocols.get(conn, signal.protocol_run_id)
            project = await projects.get(conn, run.project_id)
    except NotFoundError:
        return ForgeFacts()
    if run.head_sha is None or fix_ci_limit(project, svc.settings.fix_ci_attempts) == 0:
        return ForgeFacts()
    return ForgeFacts(ci_logs={project.id: await failed_job_facts(svc, project, run.head_sha)})


async def _gitlab_access(svc: Services, project: Project, user_id: int | None) -> int | None:
    forge = forge_for(svc, project)
    if forge is None:
        return None
    try:
        return await forge.access_level(user_id) if isinstance(forge, GitLabClient) and user_id else None
    finally:
        await forge.close()
