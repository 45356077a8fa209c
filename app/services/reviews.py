"""Review comments on a run's PR/MR → a fix round of its head step → the agent's replies, posted.

Applying a review delivery (a worker's job, never the webhook request): the PR/MR must be a run's
own; its author must be able to push (GitHub: author_association; GitLab: the members API); the run
must be running or blocked. The comments are recorded (`review.received`) on the run's head step (the
step whose commit is the run's head), which goes back to its agent unless it is already queued (the
comments join that round) or at work (they wait for its next round). A run has at most
TASKSGODZILLA_REVIEW_ROUNDS rounds; past them it blocks for a person. After the fix is committed and
pushed, the agent's structured answers are recorded (`review.answered`) and a job posts each as a reply
(`review.replied`), once per comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import DeliveryOutcome, Provider, ReviewSignal, WebhookDelivery, serves_repository
from app.domain.records import ProtocolRun, StepRun
from app.domain.reviews import (
    Answer,
    comment_facts,
    may_review_on_github,
    may_review_on_gitlab,
    parse_replies,
    reply_body,
)
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.domain.workflow import review_replies_work
from app.services.ci import Applied
from app.services.context import Services
from app.services.delivery_facts import ForgeFacts
from app.services.events import record
from app.services.forges import forge_for
from app.store import events, jobs, projects, protocols, steps
from app.store.transitions import move_protocol, move_step

RECEIVED, ANSWERED, REPLIED = "review.received", "review.answered", "review.replied"
FIX_REQUESTED = "review.fix_requested"


@dataclass(frozen=True)
class PendingReview:
    """The comments a head step's next run must answer (each as recorded: id, kind, author, body…)."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    provider: str = ""
    number: int = 0
    received: list[int] = field(default_factory=list)  # the `review.received` events it answers

    @property
    def keys(self) -> list[str]:
        return [c["key"] for c in self.comments]


async def apply_review(
    conn: AsyncConnection,
    svc: Services,
    signal: ReviewSignal,
    delivery: WebhookDelivery,
    facts: ForgeFacts | None = None,
) -> Applied:
    """Apply one review delivery inside the caller's transaction (`facts`: the GitLab reviewer's
    access level, asked before it)."""
    asked = facts or ForgeFacts()
    candidates = await projects.forge_candidates(conn, signal.repository)
    owners = {p.id: p for p in candidates if serves_repository(p, signal.provider, signal.repository)}
    runs = await protocols.on_branches(conn, list(owners), [signal.branch], pr_number=signal.pr_number)
    run = next((r for r in runs if r.pr_number == signal.pr_number and r.branch_name == signal.branch), None)
    if run is None:
        reason = f"#{signal.pr_number} of {signal.repository} is no protocol run's PR/MR"
        return Applied(DeliveryOutcome.IGNORED, reason)
    project = owners[run.project_id]
    about: dict[str, Any] = {
        "provider": str(signal.provider),
        "number": signal.pr_number,
        "delivery": delivery.delivery_id,
    }
    refusal = _refusal(run, signal, asked.access.get(project.id))
    if refusal is not None:
        note = f"review by @{signal.author} on #{signal.pr_number} ignored: {refusal}"
        await record(
            conn, project.id, "review.ignored", note, run=run, author=signal.author, reason=refusal, **about
        )
        return Applied(DeliveryOutcome.IGNORED, refusal, project.id, run.id)
    plan = await steps.list_for_protocol(conn, run.id)
    head = head_step(run, plan)
    if head is None:
        return Applied(DeliveryOutcome.IGNORED, f"{run.name} has no committed step", project.id, run.id)
    comments = [comment_facts(c, signal.author) for c in signal.comments]
    await record(
        conn,
        project.id,
        RECEIVED,
        f"@{signal.author} reviewed #{signal.pr_number} ({signal.state}, {len(comments)} comment(s))",
        step=head,
        author=signal.author,
        state=signal.state,
        comments=comments,
        url=signal.url,
        **about,
    )
    applied = Applied(DeliveryOutcome.APPLIED, "", project.id, run.id, head.id)
    if head.status is S.PENDING:
        return _note(applied, f"the review joins step {head.step_index}'s queued run")
    if head.status is S.RUNNING:
        return _note(
            applied, f"step {head.step_index}'s agent is at work: the review waits for its next round"
        )
    requested = await request_round(conn, svc, run, head, str(signal.provider), signal.pr_number)
    return Applied(
        DeliveryOutcome.APPLIED, requested.detail, project.id, run.id, head.id, next_work=requested.queued
    )


def _note(applied: Applied, detail: str) -> Applied:
    return Applied(applied.outcome, detail, applied.project_id, applied.protocol_run_id, applied.step_run_id)


def _refusal(run: ProtocolRun, signal: ReviewSignal, gitlab_level: int | None) -> str | None:
    """Why this review is not acted on, or None."""
    if signal.provider is Provider.GITHUB and not may_review_on_github(signal.association):
        return f"@{signal.author} has no write access (author_association {signal.association or 'none'})"
    if signal.provider is Provider.GITLAB and not may_review_on_gitlab(gitlab_level):
        shown_level = "none" if gitlab_level is None else str(gitlab_level)
        return f"@{signal.author} has no write access (access level {shown_level})"
    if run.status not in (P.RUNNING, P.BLOCKED):
        return f"{run.name} is {run.status}"
    return None


def head_step(run: ProtocolRun, plan: list[StepRun]) -> StepRun | None:
    """The step whose commit is the run's head (the last such); None before any commit."""
    at_head = [s for s in plan if run.head_sha is not None and s.commit_sha == run.head_sha]
    return max(at_head, key=lambda s: s.step_index) if at_head else None


@dataclass(frozen=True)
class Round:
    detail: str
    queued: bool  # the step was sent back to its agent (else the run was blocked for a person)


async def request_round(
    conn: AsyncConnection, svc: Services, run: ProtocolRun, step: StepRun, provider: str, number: int
) -> Round:
    """Send the head step back to its agent for a review round, or, the rounds used up, block the run."""
    limit = svc.settings.review_rounds
    done = len(await events.list_page(conn, protocol_run_id=run.id, event_types=[FIX_REQUESTED], limit=500))
    facts: dict[str, Any] = {"provider": provider, "number": number}
    if done >= limit:
        reason = (
            f"review rounds used up ({done} of {limit}, TASKSGODZILLA_REVIEW_ROUNDS): "
            "a person must answer the review"
        )
        await record(conn, run.project_id, "review.limit_reached", reason, run=run, limit=limit, **facts)
        if run.status is P.RUNNING:
            await move_protocol(
                conn,
                run.id,
                P.BLOCKED,
                expected_version=run.version,
                reason=reason,
                changes={"last_error": reason},
            )
        return Round(reason, queued=False)
    reason = f"review round {done + 1} of {limit}"
    if step.status in (S.COMPLETED, S.NEEDS_QA):
        step = await move_step(
            conn, step.id, S.BLOCKED, expected_version=step.version, reason="changes requested"
        )
    step = await move_step(conn, step.id, S.PENDING, expected_version=step.version, reason=reason)
    if run.status is P.BLOCKED:
        await move_protocol(
            conn, run.id, P.RUNNING, expected_version=run.version, reason="answering a review"
        )
    message = f"step {step.step_index} goes back to its agent to answer the review ({reason})"
    await record(
        conn, run.project_id, FIX_REQUESTED, message, step=step, round=done + 1, limit=limit, **facts
    )
    return Round(message, queued=True)


# --- the fix round: what the agent is given, what it answered ---------------------------------------


async def pending_review(conn: AsyncConnection, step: StepRun) -> PendingReview | None:
    """The reviews recorded on this step that no answered round took in (one that came while its
    agent was at work is still pending after it); None when there are none."""
    found = await events.list_page(conn, step_run_id=step.id, event_types=[RECEIVED, ANSWERED], limit=500)
    taken = {i for e in found if e.event_type == ANSWERED for i in e.payload.get("received") or []}
    waiting = [e for e in found if e.event_type == RECEIVED and e.id not in taken]
    if not waiting:
        return None
    comments = [c for e in waiting for c in e.payload.get("comments") or []]
    last = waiting[-1].payload
    number = int(last.get("number") or 0)
    return PendingReview(comments, str(last.get("provider") or ""), number, [e.id for e in waiting])


async def settle_review(
    svc: Services,
    conn: AsyncConnection,
    run: ProtocolRun,
    step: StepRun,
    pending: PendingReview | None,
    output: dict[str, Any] | None,
    *,
    sha: str,
    pushed: bool,
) -> bool:
    """After a step's agent committed: its answers to the round's comments recorded (`pending`, when
    it had a round) and their replies queued once pushed; then, if reviews came in while the agent was
    at work (in a review round or a fix-CI run), another round, while the run has one left. Whether a
    round was requested (the step and run may then have moved)."""
    if pending is not None:
        await _record_answers(svc, conn, run, step, pending, output, sha=sha, pushed=pushed)
    waiting = await pending_review(conn, step)
    if waiting is None:
        return False
    step = await steps.get(conn, step.id)
    run = await protocols.get(conn, run.id)
    await request_round(conn, svc, run, step, waiting.provider, waiting.number)
    return True


async def _record_answers(
    svc: Services,
    conn: AsyncConnection,
    run: ProtocolRun,
    step: StepRun,
    pending: PendingReview,
    output: dict[str, Any] | None,
    *,
    sha: str,
    pushed: bool,
) -> None:
    """The agent's answers to the round's comments, recorded; their replies queued once pushed."""
    answers = parse_replies(output, pending.keys)
    replies = [
        {
            "comment_id": c["id"],
            "key": c["key"],
            "kind": c["kind"],
            "discussion_id": c.get("discussion_id"),
            "answer": str(answers[c["key"]][0]),
            "text": answers[c["key"]][1],
        }
        for c in pending.comments
        if c["key"] in answers
    ]
    unanswered = [key for key in pending.keys if key not in answers]
    await record(
        conn,
        run.project_id,
        ANSWERED,
        f"step {step.step_index} answered {len(replies)} review comment(s) at {sha[:12]}"
        + (f"; {len(unanswered)} without an answer" if unanswered else ""),
        step=step,
        replies=replies,
        unanswered=unanswered,
        received=pending.received,
        sha=sha,
        provider=pending.provider,
        number=pending.number,
    )
    if replies and pushed:
        await jobs.defer(conn, review_replies_work(run.id))
    # Reviews that came while the agent was at work: another round, if the run has one left.
    if await pending_review(conn, step) is not None:
        step = await steps.get(conn, step.id)
        await request_round(
            conn, svc, await protocols.get(conn, run.id), step, pending.provider, pending.number
        )


# --- posting the replies ----------------------------------------------------------------------------


async def post_replies(svc: Services, run_id: int) -> None:
    """Post each recorded answer of the run as a reply on its PR/MR, once (a retried job skips those
    posted already)."""
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
        found = await events.list_page(
            conn, protocol_run_id=run.id, event_types=[ANSWERED, REPLIED], limit=500
        )
    posted = {(e.payload.get("answered"), e.payload.get("key")) for e in found if e.event_type == REPLIED}
    rounds = [e for e in found if e.event_type == ANSWERED]
    if not rounds or run.pr_number is None:
        return
    forge = forge_for(svc, project)
    if forge is None:
        return
    try:
        for answered in rounds:
            for reply in answered.payload.get("replies") or []:
                if (answered.id, reply["key"]) in posted:
                    continue
                await forge.reply(
                    run.pr_number,
                    comment_id=reply["comment_id"],
                    kind=reply["kind"],
                    discussion_id=reply.get("discussion_id"),
                    body=reply_body(Answer(reply["answer"]), reply["text"]),
                )
                async with svc.database.transaction() as conn:
                    await record(
                        conn,
                        project.id,
                        REPLIED,
                        f"replied ({reply['answer']}) to review comment {reply['comment_id']} "
                        f"on #{run.pr_number}",
                        run=run,
                        provider=str(forge.provider),
                        number=run.pr_number,
                        comment_id=reply["comment_id"],
                        key=reply["key"],
                        answer=reply["answer"],
                        answered=answered.id,
                    )
    finally:
        await forge.close()


async def fail_replies(svc: Services, run_id: int, reason: str, *, terminal: bool = False) -> None:
    """The reply job gave up (the forge unreachable, a refused token): said on the run."""
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        await record(
            conn,
            run.project_id,
            "review.reply_failed",
            f"review replies not posted: {reason}",
            run=run,
            reason=reason,
        )
