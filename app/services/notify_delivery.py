"""Notifications from the event log to their channels: route (a duty), then deliver (one job each).

Routing is a duty that reads the log after a cursor, in commit order (app/store/events.py), and in
ONE transaction inserts a delivery per (channel, event), defers each delivery's job and moves the
cursor. A crash before that commit changes nothing (the next pass reads the same events); after it,
every delivery and its job exist. A delivery row is unique per channel and event, so no pass routes
an event twice, and the cursor's row lock makes concurrent passes take turns.

Why a cursor rather than a hook in `record`: a notification is about a whole transaction (a run
blocked by CI *and* sent back to its agent needs nobody), the event writers stay untouched and pay
nothing, and a channel added later never reaches back into history (the cursor starts at the log's
horizon, and a channel takes only events recorded after it was added).

Delivery: the job sends, then records the outcome (`notification.sent` / `notification.failed`, with
the channel's name and host, never its URL or a secret). A crash between the receiver's answer and
that record makes the job run again and send again: delivery is at least once, and every try of
one notification carries the same `X-TasksGodzilla-Delivery` id for the receiver to drop a repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.events import NewEvent
from app.domain.notifications import (
    DELIVERY_HEADER,
    KIND_HEADER,
    SIGNATURE_HEADER,
    WATCHED_EVENTS,
    ChannelType,
    Message,
    Seen,
    classify,
    compose,
    email_text,
    json_body,
    signature,
    slack_body,
    whole_transactions,
)
from app.domain.records import Event
from app.domain.workflow import JobName
from app.errors import ConfigError
from app.notify import mail
from app.notify.http import DeliveryError, Post, post
from app.services.context import Services
from app.services.events import record
from app.services.notify_channels import channel_of
from app.store import events, projects, protocols, steps
from app.store import notifications as store
from app.store.events import Placed
from app.store.secrets import secret_box

PAGE = 500
MAX_PAGES = 20  # per pass: a backlog is worked through over several ticks


async def route_new_events(svc: Services) -> int:
    """Route the events committed since the last pass to their channels; how many deliveries."""
    routed = 0
    async with svc.database.transaction() as conn:
        cursor = await store.locked_cursor(conn, await events.horizon(conn))
        start = cursor
        for _ in range(MAX_PAGES):
            batch = await events.read_after(conn, cursor, event_types=list(WATCHED_EVENTS), limit=PAGE)
            cut = not batch.waiting and len(batch.settled) == PAGE
            placed = {p.event.id: p for p in batch.settled}
            taken = whole_transactions([_seen(p) for p in batch.settled], full=cut)
            if not taken:
                break
            routed += await _route(svc, conn, taken, placed)
            cursor = placed[taken[-1].id].position
            if not cut:
                break
        if cursor != start:
            await store.move_cursor(conn, cursor)
    return routed


def _seen(placed: Placed) -> Seen:
    event = placed.event
    return Seen(event.id, placed.position.txid, event.event_type, event.protocol_run_id, event.payload)


async def _route(svc: Services, conn: AsyncConnection, taken: list[Seen], placed: dict[int, Placed]) -> int:
    notices = classify(taken)
    if not notices:
        return 0
    channels = await store.channels_of(conn, [placed[n.event_id].event.project_id for n in notices])
    rows = []
    for notice in notices:
        event = placed[notice.event_id].event
        for channel in channels:
            if (
                channel.project_id == event.project_id
                and notice.kind in channel.kinds
                and channel.created_at <= event.created_at
            ):
                rows.append((channel.id, event.id, notice.kind))
    added = await store.add_deliveries(conn, rows)
    await store.defer_deliveries(conn, added, task=JobName.DELIVER_NOTIFICATION.value)
    return len(added)


async def message_for(svc: Services, kind: str, event: Event) -> Message:
    """The words of a notification of `kind` about `event`."""
    async with svc.database.read() as conn:
        project = await projects.get(conn, event.project_id)
        run = await protocols.get(conn, event.protocol_run_id) if event.protocol_run_id else None
        step = await steps.get(conn, event.step_run_id) if event.step_run_id else None
    return compose(
        kind=kind,
        event_id=event.id,
        event_type=event.event_type,
        event_message=event.message,
        at=event.created_at.isoformat(),
        project=(project.id, project.name),
        run=(run.id, run.name) if run else None,
        step=(step.id, f"{step.step_index}: {step.name}") if step else None,
        public_url=svc.settings.public_url,
    )


async def send(svc: Services, channel: store.Channel, message: Message, delivery_id: int) -> None:
    """Send one message on one channel; DeliveryError when it did not arrive."""
    box = secret_box(svc.settings)
    if channel.channel_type == ChannelType.EMAIL:
        settings = svc.settings
        if not settings.smtp_host or not settings.smtp_from:
            raise DeliveryError("e-mail is not configured (TASKSGODZILLA_SMTP_HOST, _FROM)", retryable=False)
        server = mail.SmtpServer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            sender=settings.smtp_from,
            timeout_seconds=settings.notify_timeout_seconds,
        )
        headers = {DELIVERY_HEADER: str(delivery_id), KIND_HEADER: message.kind}
        text = email_text(message)
        letter = mail.message(
            sender=server.sender,
            to=channel.recipients or [],
            subject=message.title,
            text=text,
            headers=headers,
        )
        await mail.send(server, letter)
        return
    assert channel.url_ciphertext is not None
    url = box.decrypt(channel.url_ciphertext)
    if channel.channel_type == ChannelType.SLACK:
        request = Post(url, slack_body(message), {})
    else:
        assert channel.secret_ciphertext is not None
        body = json_body(message, delivery_id)
        request = Post(
            url,
            body,
            {
                SIGNATURE_HEADER: signature(box.decrypt(channel.secret_ciphertext), body),
                DELIVERY_HEADER: str(delivery_id),
                KIND_HEADER: message.kind,
            },
        )
    try:
        await post(
            request,
            allow_private=svc.settings.notify_allow_private_urls,
            timeout_seconds=svc.settings.notify_timeout_seconds,
        )
    except DeliveryError as exc:
        path = url.split("//", 1)[-1].split("/", 1)[-1]
        said = exc.message.replace(url, "[url]").replace(path, "[path]") if path else exc.message
        raise DeliveryError(said, retryable=exc.retryable) from None


async def deliver(svc: Services, delivery_id: int, *, attempt: int, last_try: bool) -> bool:
    """Send one delivery and record the try. True when it is settled (sent, or failed for good, or
    nothing to do); False when it failed and should be tried again."""
    async with svc.database.read() as conn:
        delivery = await store.delivery(conn, delivery_id)
        channel = await store.channel(conn, delivery.channel_id) if delivery else None
        event = await store.event(conn, delivery.event_id) if delivery else None
    if delivery is None or channel is None or event is None or delivery.status != "pending":
        return True  # sent already (a twin try), or the channel or project was deleted
    message = await message_for(svc, delivery.kind, event)
    facts = {
        "channel": channel.name,
        "channel_type": channel.channel_type,
        "kind": delivery.kind,
        "event_id": event.id,
        "delivery": delivery.id,
        "attempt": attempt,
        "host": channel.host,
    }
    try:
        try:
            await send(svc, channel, message, delivery.id)
        except ConfigError as exc:  # its URL or secret stored under another key: no try will do
            raise DeliveryError(exc.message, retryable=False) from None
    except DeliveryError as exc:
        final = last_try or not exc.retryable
        error = svc.redactor(exc.message)[:500]
        async with svc.database.transaction() as conn:
            await store.record_attempt(
                conn, delivery.id, status="failed" if final else "pending", error=error
            )
            note = f"notification {delivery.kind} to {channel.name} failed (try {attempt}): {error}"
            await _event(conn, event, "notification.failed", note, {**facts, "error": error, "final": final})
        return final
    async with svc.database.transaction() as conn:
        await store.record_attempt(conn, delivery.id, status="sent", error=None)
        note = f"notification {delivery.kind} sent to {channel.name} (try {attempt})"
        await _event(conn, event, "notification.sent", note, facts)
    return True


async def _event(
    conn: AsyncConnection, about: Event, kind: str, message: str, payload: dict[str, object]
) -> None:
    await events.append(
        conn,
        NewEvent(
            project_id=about.project_id,
            protocol_run_id=about.protocol_run_id,
            step_run_id=about.step_run_id,
            event_type=kind,
            message=message,
            payload=payload,
        ),
    )


async def send_test(svc: Services, project_id: int, channel_id: int) -> str | None:
    """Send a test message on a channel now; None when it arrived, else why not."""
    channel = await channel_of(svc, project_id, channel_id)
    async with svc.database.read() as conn:
        project = await projects.get(conn, project_id)
    message = compose(
        kind="test",
        event_id=0,
        event_type="notification.test",
        event_message="a test message: this channel works",
        at=datetime.now(UTC).isoformat(),
        project=(project.id, project.name),
        run=None,
        step=None,
        public_url=svc.settings.public_url,
    )
    error: str | None = None
    try:
        await send(svc, channel, message, 0)
    except DeliveryError as exc:
        error = svc.redactor(exc.message)
    async with svc.database.transaction() as conn:
        said = "arrived" if error is None else f"did not arrive: {error}"
        await record(
            conn,
            project_id,
            "notification.tested",
            f"test message on channel {channel.name} {said}",
            channel=channel.name,
            delivered=error is None,
            error=error,
        )
    return error
