"""Notifications end to end: the event log → routing → a delivery job → a local receiver speaking each
channel's real wire format; retries with backoff; routing by kind; no loss and no repeat across a
stop between the event and the send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.domain.events import NewEvent
from app.domain.records import ProtocolRun, StepRun
from app.jobs.runtime import open_runtime
from app.services import notify_channels, notify_delivery, scheduler
from app.services.context import Services
from app.store import events, projects, protocols, steps
from app.store import notifications as store
from app.store.notification_tables import notification_cursor, notification_deliveries
from tests.support.notify_receivers import HttpReceiver, SmtpReceiver, free_port
from tests.support.workflow import running_worker, wait_for, workflow_settings

SECRET = "whsec-0123456789abcdef-test"
SMTP_USER, SMTP_PASSWORD = "tg-mailer", "smtp-password-4242"
PUBLIC = "https://tg.example.test"
# The test SMTP server takes a login over plain text (a loopback test server only).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def settings_for(tmp_path: Path, *, smtp_port: int | None = None, **overrides: Any):
    return workflow_settings(
        tmp_path,
        notify_allow_private_urls=True,
        public_url=PUBLIC,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port or free_port(),
        smtp_security="none",
        smtp_user=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_from="tasksgodzilla@example.test",
        **overrides,
    )


async def seed(svc: Services, name: str = "shop") -> tuple[ProtocolRun, StepRun]:
    async with svc.database.transaction() as conn:
        project = await projects.create(conn, name=name, local_path=f"/srv/{name}")
        run = await protocols.create(conn, project.id, title="Add login", slug="add-login")
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "login-form", "step_file": "01.md"}]
        )
    return run, step


async def happen(
    svc: Services, run: ProtocolRun, step: StepRun | None, *kinds: tuple[str, dict[str, Any]]
) -> None:
    """Record these events in one transaction (as one use case would)."""
    async with svc.database.transaction() as conn:
        for kind, payload in kinds:
            await events.append(
                conn,
                NewEvent(
                    project_id=run.project_id,
                    protocol_run_id=run.id,
                    step_run_id=step.id if step is not None else None,
                    event_type=kind,
                    message=f"{kind} happened",
                    payload=payload,
                ),
            )


async def event_rows(svc: Services, run: ProtocolRun, kind: str) -> list[Any]:
    async with svc.database.read() as conn:
        return await events.list_page(conn, protocol_run_id=run.id, event_types=[kind], limit=100)


async def deliveries(svc: Services, channel_id: int) -> list[store.Delivery]:
    async with svc.database.read() as conn:
        return await store.deliveries_of(conn, channel_id)


def no_secret_in(items: list[Any], *secrets: str) -> None:
    dumped = json.dumps([(e.message, e.payload) for e in items])
    for secret in secrets:
        assert secret not in dumped


async def test_a_json_webhook_gets_a_signed_body_naming_project_run_step_and_a_console_link(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        HttpReceiver("webhook", SECRET) as receiver,
        running_worker(settings_for(tmp_path), database_url) as svc,
    ):
        run, _step = await seed(svc)
        channel = await notify_channels.add_channel(
            svc,
            run.project_id,
            name="ops",
            channel_type="webhook",
            kinds=["run.completed"],
            url=receiver.url,
            secret=SECRET,
        )
        assert channel.secret is None  # given by the caller: never echoed
        await happen(svc, run, None, ("protocol.completed", {"from": "running", "to": "completed"}))
        await notify_delivery.route_new_events(svc)
        await wait_for(lambda: receiver.received, what="the webhook delivery")

        [got] = receiver.received
        body = got.json()
        assert body["kind"] == "run.completed"
        assert body["project"]["name"] == "shop"
        assert body["run"] == {"id": run.id, "name": run.name}
        assert body["link"] == f"{PUBLIC}/console/protocols/{run.id}"
        assert got.headers["X-TasksGodzilla-Kind"] == "run.completed"
        assert got.headers["X-TasksGodzilla-Delivery"] == str(body["delivery"])
        assert receiver.refused == []

        sent = await wait_for(lambda: event_rows(svc, run, "notification.sent"), what="notification.sent")
        assert sent[0].payload["host"] == "127.0.0.1"
        assert sent[0].payload["channel"] == "ops"
        every = await event_rows(svc, run, "notification.sent") + await event_rows(
            svc, run, "notification.channel_added"
        )
        no_secret_in(every, SECRET, "s3cr3t-path-token")


async def test_a_wrong_secret_is_refused_by_the_receiver_and_recorded_failed_for_good(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_max_attempts=2)
    async with HttpReceiver("webhook", SECRET) as receiver, running_worker(settings, database_url) as svc:
        run, _ = await seed(svc)
        channel = await notify_channels.add_channel(
            svc, run.project_id, name="ops", channel_type="webhook", kinds=["run.failed"], url=receiver.url
        )
        assert channel.secret is not None
        assert channel.secret != SECRET
        await happen(svc, run, None, ("protocol.failed", {"from": "running", "to": "failed"}))
        await notify_delivery.route_new_events(svc)
        failed = await wait_for(
            lambda: event_rows(svc, run, "notification.failed"), what="notification.failed"
        )
        # 401 is not worth retrying: one try, final; its error names the host, never the URL's token.
        assert failed[0].payload["final"] is True
        assert "401" in failed[0].payload["error"]
        assert receiver.refused == ["signature"]
        assert receiver.received == []
        [delivery] = await deliveries(svc, channel.id)
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        no_secret_in(failed, "s3cr3t-path-token", channel.secret)


async def test_a_slack_webhook_gets_text_and_blocks_as_slack_documents(
    database_url: str, tmp_path: Path
) -> None:
    async with HttpReceiver("slack") as receiver, running_worker(settings_for(tmp_path), database_url) as svc:
        run, _ = await seed(svc)
        await notify_channels.add_channel(
            svc, run.project_id, name="team", channel_type="slack", kinds=["pr.ready"], url=receiver.url
        )
        await happen(
            svc,
            run,
            None,
            ("pr.opened", {"provider": "github", "number": 7, "url": "https://x/7", "sha": "a" * 40}),
        )
        await notify_delivery.route_new_events(svc)
        await wait_for(lambda: receiver.received, what="the Slack delivery")
        payload = receiver.received[0].json()
        assert set(payload) == {"text", "blocks"}
        assert "PR ready for review" in payload["text"]
        assert run.name in payload["text"]
        assert [b["type"] for b in payload["blocks"]] == ["header", "section", "actions"]
        assert payload["blocks"][2]["elements"][0]["url"] == f"{PUBLIC}/console/protocols/{run.id}"
        assert receiver.refused == []


async def test_an_email_reaches_the_smtp_server_with_its_headers_and_body(
    database_url: str, tmp_path: Path
) -> None:
    with SmtpReceiver(user=SMTP_USER, password=SMTP_PASSWORD) as smtp:
        settings = settings_for(tmp_path, smtp_port=smtp.port)
        async with running_worker(settings, database_url) as svc:
            run, step = await seed(svc)
            await notify_channels.add_channel(
                svc, run.project_id, name="mail", channel_type="email", kinds=["ci.gave_up"],
                recipients=["dev@example.test", "lead@example.test"],
            )  # fmt: skip
            # CI failed on the step's head and no fix attempt is left: the step and its run blocked.
            await happen(
                svc,
                run,
                step,
                ("step.blocked", {"from": "completed", "to": "blocked"}),
                (
                    "ci.failed",
                    {"provider": "github", "name": "tests", "sha": "b" * 40, "summary": "3 failed"},
                ),
                ("protocol.blocked", {"from": "running", "to": "blocked", "reason": "CI failed on step 1"}),
            )
            await notify_delivery.route_new_events(svc)
            await wait_for(lambda: smtp.envelopes, what="the e-mail")
            sender, recipients, mail = smtp.envelopes[0]
            assert sender == "tasksgodzilla@example.test"
            assert recipients == ["dev@example.test", "lead@example.test"]
            assert mail["From"] == "tasksgodzilla@example.test"
            assert mail["To"] == "dev@example.test, lead@example.test"
            assert mail["Subject"] == f"[shop] CI failed (no fix attempt left): {run.name}"
            assert mail["X-TasksGodzilla-Kind"] == "ci.gave_up"
            assert mail["Message-ID"]
            assert mail["Date"]
            text = mail.get_payload(decode=True).decode()
            assert "Step: 1: login-form" in text
            assert f"{PUBLIC}/console/protocols/{run.id}" in text
            assert smtp.logins[0].login == SMTP_USER.encode()
            sent = await wait_for(lambda: event_rows(svc, run, "notification.sent"), what="notification.sent")
            assert sent[0].payload["kind"] == "ci.gave_up"
            no_secret_in(await event_rows(svc, run, "notification.sent"), SMTP_PASSWORD)


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_try(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_max_attempts=4)
    async with (
        HttpReceiver("webhook", SECRET, fail_first=2) as receiver,
        running_worker(settings, database_url) as svc,
    ):
        run, _ = await seed(svc)
        channel = await notify_channels.add_channel(
            svc,
            run.project_id,
            name="ops",
            channel_type="webhook",
            kinds=["run.blocked"],
            url=receiver.url,
            secret=SECRET,
        )
        await happen(
            svc, run, None, ("protocol.blocked", {"from": "running", "to": "blocked", "reason": "stuck"})
        )
        await notify_delivery.route_new_events(svc)
        await wait_for(lambda: event_rows(svc, run, "notification.sent"), what="the third try")
        failed = await event_rows(svc, run, "notification.failed")
        assert [(e.payload["attempt"], e.payload["final"]) for e in failed] == [(1, False), (2, False)]
        assert all("500" in e.payload["error"] for e in failed)
        [delivery] = await deliveries(svc, channel.id)
        assert (delivery.status, delivery.attempts) == ("sent", 3)
        assert receiver.calls == 3
        assert len(receiver.received) == 1

        # Sent or failed deliveries are kept a month; a pending one stays whatever its age.
        async with svc.database.transaction() as conn:
            [pending] = await store.add_deliveries(conn, [(channel.id, 10**12, "run.blocked")])
        assert await scheduler.forget_old_notifications(svc) == 0
        later = datetime.now(UTC) + timedelta(days=32)
        assert await scheduler.forget_old_notifications(svc, now=later) == 1
        assert [d.id for d in await deliveries(svc, channel.id)] == [pending]


async def test_an_email_the_server_defers_twice_is_sent_on_the_third_try(
    database_url: str, tmp_path: Path
) -> None:
    with SmtpReceiver(user=SMTP_USER, password=SMTP_PASSWORD, fail_first=2) as smtp:
        async with running_worker(
            settings_for(tmp_path, smtp_port=smtp.port, notify_max_attempts=4), database_url
        ) as svc:
            run, _ = await seed(svc)
            await notify_channels.add_channel(
                svc, run.project_id, name="mail", channel_type="email", recipients=["dev@example.test"]
            )
            await happen(svc, run, None, ("protocol.cancelled", {"from": "running", "to": "cancelled"}))
            await notify_delivery.route_new_events(svc)
            await wait_for(lambda: event_rows(svc, run, "notification.sent"), what="the third try")
            assert smtp.calls == 3
            assert len(smtp.envelopes) == 1
            assert [e.payload["attempt"] for e in await event_rows(svc, run, "notification.failed")] == [1, 2]


async def test_only_subscribed_kinds_of_the_channels_own_project_are_sent(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        HttpReceiver("webhook", SECRET) as receiver,
        running_worker(settings_for(tmp_path), database_url) as svc,
    ):
        run, step = await seed(svc)
        other, _ = await seed(svc, "other")
        channel = await notify_channels.add_channel(
            svc, run.project_id, name="ops", channel_type="webhook", kinds=["run.completed", "run.blocked"],
            url=receiver.url, secret=SECRET,
        )  # fmt: skip
        await happen(
            svc, run, None, ("protocol.failed", {"from": "running", "to": "failed"})
        )  # not subscribed
        # Blocked by CI and sent back to its agent in the same transaction: nobody is needed.
        await happen(
            svc,
            run,
            step,
            ("ci.failed", {"provider": "github", "name": "tests", "sha": "c" * 40}),
            ("protocol.blocked", {"from": "running", "to": "blocked", "reason": "CI failed on step 1"}),
            ("ci.fix_requested", {"attempt": 1, "limit": 2, "sha": "c" * 40}),
            ("protocol.running", {"from": "blocked", "to": "running", "reason": "fixing CI"}),
        )
        await happen(
            svc, other, None, ("protocol.completed", {"from": "running", "to": "completed"})
        )  # not its project
        await happen(svc, run, None, ("protocol.completed", {"from": "running", "to": "completed"}))
        await notify_delivery.route_new_events(svc)  # the duty may route some first: either way
        await wait_for(lambda: receiver.received, what="the one delivery")
        assert len(await deliveries(svc, channel.id)) == 1
        assert [r.json()["kind"] for r in receiver.received] == ["run.completed"]
        assert receiver.received[0].json()["project"]["name"] == "shop"


async def test_a_stop_between_event_and_send_neither_loses_nor_repeats(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    async with HttpReceiver("webhook", SECRET) as receiver:
        async with open_runtime(settings, database_url) as (_, svc):  # services, and no worker running
            run, _ = await seed(svc)
            channel = await notify_channels.add_channel(
                svc, run.project_id, name="ops", channel_type="webhook", url=receiver.url, secret=SECRET
            )
            # The event commits, and the service "stops" before any routing pass.
            await happen(svc, run, None, ("protocol.completed", {"from": "running", "to": "completed"}))
            # A routing pass rolled back half-way (a crash before its commit) changes nothing.
            with pytest.raises(RuntimeError):
                async with svc.database.transaction() as conn:
                    before = await store.locked_cursor(conn, await events.horizon(conn))
                    raise RuntimeError("crash")
            # Routed (delivery + job committed together), then the service stops before sending.
            assert await notify_delivery.route_new_events(svc) == 1
            # Routing again, even from a cursor put back before the event, adds nothing.
            async with svc.database.transaction() as conn:
                await conn.execute(notification_cursor.update().values(txid=before.txid, event_id=before.id))
            assert await notify_delivery.route_new_events(svc) == 0
            assert receiver.calls == 0
        async with running_worker(settings, database_url) as svc:  # back up: the job waits for it

            async def sent() -> list[store.Delivery]:
                return [d for d in await deliveries(svc, channel.id) if d.status == "sent"]

            [delivery] = await wait_for(sent, what="the delivery after the restart")
            # A twin of a sent delivery's job (a retried job whose first try did send) sends nothing.
            assert await notify_delivery.deliver(svc, delivery.id, attempt=2, last_try=False) is True
            async with svc.database.read() as conn:
                rows = (await conn.execute(notification_deliveries.select())).all()
        assert len(rows) == 1
        assert receiver.calls == 1
