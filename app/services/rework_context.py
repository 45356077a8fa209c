"""What a step's agent is told on top of the usual when it runs again: the failed CI job's log (from
the `ci.fix_requested` that sent it back) and the review comments it must answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ci import CiResult
from app.domain.ci_logs import ci_log_instructions
from app.domain.records import StepRun
from app.domain.reviews import REPLY_SCHEMA, review_instructions
from app.services.context import Services
from app.services.reviews import PendingReview, pending_review
from app.store import events


@dataclass(frozen=True)
class ReworkContext:
    instructions: str = ""
    review: PendingReview | None = None  # comments to answer: the agent's answer follows REPLY_SCHEMA

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return REPLY_SCHEMA if self.review is not None else None


async def rework_context(conn: AsyncConnection, svc: Services, step: StepRun) -> ReworkContext:
    parts = []
    if step.ci_status == CiResult.FAILED:
        fixes = await events.recent(conn, step_run_id=step.id, type_prefix="ci.fix_requested", limit=1)
        if fixes and fixes[0].payload.get("sha") == step.commit_sha:
            parts.append(ci_log_instructions(fixes[0].payload))
    review = await pending_review(conn, step)
    if review is not None:
        parts.append(review_instructions(review.comments, limit=svc.settings.review_text_max_chars))
    return ReworkContext("\n\n".join(part for part in parts if part), review)
