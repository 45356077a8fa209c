"""Fetching the failed CI job's log for the fix-CI prompt, by the job that applies the failure (the
webhook request only records the delivery; app.services.delivery_facts asks before the job's
transaction): the forge's jobs API, the log's end only, secrets redacted."""

from __future__ import annotations

from typing import Any

from app.domain.ci_logs import log_tail
from app.domain.records import Project
from app.errors import TasksGodzillaError
from app.services.agents import Subject, redactor_for
from app.services.context import Services
from app.services.forges import forge_for

BYTES_PER_CHAR = 4  # UTF-8's widest: the bytes fetched always hold `limit` characters


async def failed_job_facts(svc: Services, project: Project, sha: str) -> dict[str, Any]:
    """The `ci.fix_requested` payload's log fields: `failed_job`, `job_url`, `log_tail`; or, when they
    could not be had, `log_problem` saying why (the fix goes ahead with the summary alone)."""
    limit = svc.settings.ci_log_tail_chars
    forge = forge_for(svc, project) if limit > 0 else None
    if forge is None:
        return {}
    try:
        job = await forge.failed_job(sha, limit * BYTES_PER_CHAR)
    except TasksGodzillaError as exc:
        return {"log_problem": f"the failed job's log could not be read: {exc.message}"}
    finally:
        await forge.close()
    if job is None:
        return {"log_problem": f"the forge lists no failed CI job on {sha[:12]}"}
    redactor = await redactor_for(svc, Subject(project.id))
    return {
        "failed_job": job.name[:200],
        "job_url": job.url,
        "log_tail": log_tail(job.log_tail, limit, redactor),
    }
