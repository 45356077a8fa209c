"""The notification delivery job: one try per run, retried with backoff (its own number of tries)."""

from __future__ import annotations

import procrastinate
from procrastinate import JobContext

from app.domain.workflow import JobName
from app.jobs.retry import RetryPolicy
from app.jobs.tasks import services_of
from app.logs import correlation_scope
from app.services import notify_delivery


class TryAgain(Exception):
    """This try failed (recorded as `notification.failed`); Procrastinate retries the job later."""


def register_notifications(app: procrastinate.App, retry: RetryPolicy) -> None:
    app.task(name=JobName.DELIVER_NOTIFICATION.value, pass_context=True, retry=retry)(deliver_notification)


async def deliver_notification(context: JobContext, delivery_id: int) -> None:
    svc = services_of(context)
    job = context.job
    attempt = job.attempts + 1
    with correlation_scope(
        f"job-{job.id}", job=job.task_name, attempt=job.attempts, notification=delivery_id
    ):
        last_try = attempt >= svc.settings.notify_max_attempts
        if not await notify_delivery.deliver(svc, delivery_id, attempt=attempt, last_try=last_try):
            raise TryAgain(f"notification delivery {delivery_id} failed on try {attempt}")
