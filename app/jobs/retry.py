"""Backoff between tries: exponential, capped, with jitter (the decision itself is in app.domain)."""

from __future__ import annotations

import datetime
import random

from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.jobs import Job

from app.domain.workflow import retry_delay


class RetryPolicy(BaseRetryStrategy):
    """Retry whatever the task re-raised (it already decided the error is worth it and tries remain)."""

    def __init__(self, *, max_attempts: int, base_seconds: float, cap_seconds: float) -> None:
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if job.attempts + 1 >= self.max_attempts:
            return None
        delay = retry_delay(
            job.attempts + 1,
            base=self.base_seconds,
            cap=self.cap_seconds,
            jitter=random.random(),  # noqa: S311
        )
        return RetryDecision(retry_at=datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delay))
