"""Merging a run's PR/MR by itself when its policy says `auto_merge` and it is safe: every step
completed, the PR/MR published at the run's head, CI passed on that head (app.domain.ci.auto_merge_blocker).

The forge merges only at that head (its SHA guards the request), once per head: a second trigger finds
the attempt's event and does nothing. A refusal (a conflict, checks the forge requires, a head that
moved) is recorded with the forge's reason and the run keeps waiting for a person's merge. Either way
the run completes as it always does, when the merge webhook arrives (app.services.ci).
"""

from __future__ import annotations

from typing import Any

from app.domain.ci import auto_merge_blocker
from app.domain.records import ProtocolRun
from app.forges.client import MergeAnswer
from app.logs import get_logger
from app.services.context import Services
from app.services.events import record
from app.services.forges import forge_for
from app.services.policy import run_policy
from app.services.progress import auto_merge_attempted
from app.store import projects, protocols, steps

log = get_logger(__name__)


async def auto_merge(svc: Services, run_id: int) -> ProtocolRun:
    """Merge the run's PR/MR at its head when its policy allows it and it is safe; else nothing."""
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
        blocker = auto_merge_blocker(run, await steps.list_for_protocol(conn, run.id))
        allowed = bool((await run_policy(conn, run.id)).policy.get("auto_merge"))
        attempted = await auto_merge_attempted(conn, run.id, run.head_sha or "")
    forge = forge_for(svc, project)
    if blocker is not None or not allowed or attempted or forge is None or run.pr_number is None:
        log.info(
            "auto-merge: nothing to do", run=run.id, blocker=blocker, allowed=allowed, attempted=attempted
        )
        if forge is not None:
            await forge.close()
        return run
    sha = run.head_sha or ""
    try:
        pull = await forge.get(run.pr_number)
        if pull.merged:
            return run  # merged meanwhile (a person, or this job's earlier try): the webhook completes it
        if pull.state != "open":
            answer = MergeAnswer(False, f"#{pull.number} is {pull.state}")
        else:
            answer = await forge.merge(pull.number, sha)
    finally:
        await forge.close()
    return await _record(svc, run, str(forge.provider), sha, answer)


async def _record(
    svc: Services, run: ProtocolRun, provider: str, sha: str, answer: MergeAnswer
) -> ProtocolRun:
    what = f"{provider} #{run.pr_number}"
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run.id)
        facts: dict[str, Any] = {"provider": provider, "number": run.pr_number, "sha": sha}
        if answer.merged:
            message = f"{what} merged at {sha[:12]} (auto-merge); the merge webhook completes the run"
            await record(conn, run.project_id, "pr.auto_merge_requested", message, run=run, **facts)
        else:
            message = f"auto-merge of {what} refused: {answer.reason}; it waits for a person's merge"
            await record(
                conn, run.project_id, "pr.auto_merge_refused", message, run=run, reason=answer.reason, **facts
            )
    return run


async def fail_auto_merge(svc: Services, run_id: int, reason: str, *, terminal: bool = False) -> None:
    """The merge job gave up (the forge unreachable, a refused token): recorded as a refusal; the run is
    left as it is, waiting for a person's merge."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
        await record(
            conn,
            run.project_id,
            "pr.auto_merge_refused",
            f"auto-merge of #{run.pr_number} failed: {reason[:300]}; it waits for a person's merge",
            run=run,
            provider=project.ci_provider,
            number=run.pr_number,
            sha=run.head_sha,
            reason=reason[:2000],
        )
