"""Telling an issue how its run goes: each milestone (taken in, started, PR opened, completed, failed,
cancelled with the reason) commented once on the issue through the project's forge.

The milestones come from the run's record (app.domain.intake.milestones); what was posted is kept on
the issue's row, which is locked while its comments are posted, so two passes never post one twice
(a pass skips a row another holds). A forge that fails leaves the milestone for the next pass.
"""

from __future__ import annotations

from app.domain.intake import IntakeIssue, milestones
from app.domain.records import ProtocolRun
from app.logs import get_logger
from app.services.context import Services
from app.services.events import record
from app.services.forges import forge_for
from app.store import intake as issues
from app.store import projects, protocols

log = get_logger(__name__)


async def post_progress(svc: Services) -> int:
    """Comment every issue's run milestones not posted yet; how many comments were posted."""
    async with svc.database.read() as conn:
        waiting = await issues.with_unfinished_story(conn)
    posted = 0
    for row in waiting:
        try:
            posted += await _post_for(svc, row)
        except Exception:
            log.exception("could not comment a run's progress on its issue", issue=row.number)
    return posted


def run_address(svc: Services, run: ProtocolRun) -> str:
    base = svc.settings.api_base
    return f"{base}/console/protocols/{run.id}" if base else f"protocol run id {run.id}"


async def _post_for(svc: Services, candidate: IntakeIssue) -> int:
    async with svc.database.transaction() as conn:
        row = await issues.lock_if_free(conn, candidate.id)
        if row is None or row.protocol_run_id is None:
            return 0
        run = await protocols.get(conn, row.protocol_run_id)
        reason = row.cancel_reason if row.cancelled_by_intake else ""
        due = [
            m
            for m in milestones(
                run_name=run.name,
                run_url=run_address(svc, run),
                status=run.status,
                pr_url=run.pr_url,
                reason=reason,
            )
            if m.key not in row.posted
        ]
        if not due:
            return 0
        project = await projects.get(conn, row.project_id)
        forge = forge_for(svc, project)
        if forge is None:
            return 0
        done = list(row.posted)
        try:
            for milestone in due:
                await forge.comment_issue(row.number, milestone.text)
                done.append(milestone.key)
        except Exception:
            # What was posted stays posted (kept below); the rest waits for the next pass.
            log.exception("the forge refused a progress comment", issue=row.number, run=run.name)
        finally:
            await forge.close()
        await issues.update_fields(conn, row.id, posted=done)
        for key in done[len(row.posted) :]:
            await record(
                conn, project.id, "intake.commented", f"issue #{row.number}: commented {key}",
                run=run, issue=row.number, milestone=key,
            )  # fmt: skip
    return len(done) - len(row.posted)
