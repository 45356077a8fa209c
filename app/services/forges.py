"""Opening (or bringing up to date) the PR/MR of a protocol branch on the project's forge (and, when
the run's policy allows it, queueing its auto-merge: app.services.auto_merge)."""

from __future__ import annotations

from collections.abc import Sequence

from app.config import Settings
from app.domain.ci import Provider, project_repository
from app.domain.pull_requests import pr_body, pr_title, summary_comment
from app.domain.records import Project, ProtocolRun, StepRun
from app.errors import ConfigError
from app.forges.client import Forge
from app.forges.github_client import GitHubClient
from app.forges.gitlab_client import GitLabClient
from app.services.context import Services
from app.services.events import record
from app.services.progress import defer_auto_merge
from app.store import protocols


def forge_token(settings: Settings, project: Project) -> str | None:
    """The project's own token (TASKSGODZILLA_FORGE_TOKENS), else the service-wide one of its forge."""
    own = settings.forge_tokens.get(project.name)
    if own is not None:
        return own.get_secret_value()
    shared = settings.github_token if project.ci_provider == Provider.GITHUB else settings.gitlab_token
    return shared.get_secret_value() if shared is not None else None


def has_forge(settings: Settings, project: Project) -> bool:
    """The project names its forge and its repository there, and a token to act with is configured."""
    return (
        project.ci_provider in (Provider.GITHUB, Provider.GITLAB)
        and project_repository(project) is not None
        and forge_token(settings, project) is not None
    )


def forge_for(svc: Services, project: Project) -> Forge | None:
    """A client for the project's forge (close it after use), or None when it has none."""
    settings = svc.settings
    repository, token = project_repository(project), forge_token(settings, project)
    if not has_forge(settings, project) or repository is None or token is None:
        return None
    timeout = settings.forge_timeout_seconds
    if project.ci_provider == Provider.GITHUB:
        return GitHubClient(settings.github_api_url, repository, token, timeout=timeout)
    return GitLabClient(settings.gitlab_api_url, repository, token, timeout=timeout)


async def publish_pull_request(
    svc: Services, project: Project, run: ProtocolRun, steps: Sequence[StepRun], sha: str
) -> ProtocolRun:
    """Open the branch's PR/MR (or update the open one: a retried job never opens two), post the run
    summary on it, and remember the head it was published at. The run then waits for the merge."""
    forge = forge_for(svc, project)
    if forge is None:
        raise ConfigError(f"project {project.name} has no forge to open a PR/MR on")
    branch = run.branch_name or ""
    try:
        existing = await forge.find_open(branch)
        title, body = pr_title(run), pr_body(run, steps, console_base=svc.settings.api_base)
        if existing is None:
            pull = await forge.create(branch=branch, base=run.base_branch, title=title, body=body)
        else:
            pull = await forge.update(existing.number, title=title, body=body)
        await forge.comment(pull.number, summary_comment(run, steps, sha))
    finally:
        await forge.close()
    async with svc.database.transaction() as conn:
        current = await protocols.get(conn, run.id)
        run = await protocols.update_fields(
            conn,
            run.id,
            expected_version=current.version,
            pr_url=pull.url,
            pr_number=pull.number,
            published_sha=sha,
        )
        kind = "pr.opened" if existing is None else "pr.updated"
        verb = "opened" if existing is None else "updated"
        await record(
            conn,
            run.project_id,
            kind,
            f"{forge.provider} #{pull.number} {verb} for {branch} at {sha[:12]}",
            run=run,
            provider=str(forge.provider),
            number=pull.number,
            url=pull.url,
            sha=sha,
        )
        # CI may have passed on this head already: then the PR/MR is ready for an auto-merge now.
        await defer_auto_merge(svc, conn, run.id)
    return run
