"""Which transactions of the log call for a person, and what each channel is sent (pure rules)."""

from __future__ import annotations

import hashlib
import hmac
import json

from app.domain.notifications import (
    KINDS,
    Seen,
    classify,
    compose,
    json_body,
    signature,
    slack_body,
    whole_transactions,
)


def seen(event_id: int, txid: int, kind: str, run: int | None = 1, **payload: object) -> Seen:
    return Seen(event_id, txid, kind, run, dict(payload))


def kinds_of(events: list[Seen]) -> list[tuple[int, str]]:
    return [(n.event_id, n.kind) for n in classify(events)]


def test_each_kind_comes_from_its_happening() -> None:
    events = [
        seen(1, 10, "protocol.blocked"),
        seen(2, 11, "step.needs_input"),  # recorded by a later change: routed already
        seen(3, 12, "budget.exceeded", mode="enforce"),
        seen(4, 13, "pr.opened"),
        seen(5, 14, "protocol.completed"),
        seen(6, 15, "protocol.failed"),
        seen(7, 16, "protocol.cancelled"),
    ]
    assert kinds_of(events) == [
        (1, "run.blocked"),
        (2, "step.needs_input"),
        (3, "budget.stopped"),
        (4, "pr.ready"),
        (5, "run.completed"),
        (6, "run.failed"),
        (7, "run.cancelled"),
    ]
    assert {kind for _, kind in kinds_of(events)} | {"ci.gave_up"} == set(KINDS)


def test_a_ci_block_is_told_only_when_no_fix_attempt_is_left() -> None:
    fixing = [
        seen(1, 20, "ci.failed"),
        seen(2, 20, "protocol.blocked"),
        seen(3, 20, "ci.fix_requested"),
        seen(4, 20, "protocol.running"),
    ]
    assert kinds_of(fixing) == []
    gave_up = [seen(5, 21, "ci.failed"), seen(6, 21, "protocol.blocked")]
    assert kinds_of(gave_up) == [(6, "ci.gave_up")]
    # Another run's fix in the same transaction changes nothing for this one.
    mixed = [
        seen(7, 22, "ci.failed", run=1),
        seen(8, 22, "protocol.blocked", run=1),
        seen(9, 22, "ci.fix_requested", run=2),
    ]
    assert kinds_of(mixed) == [(8, "ci.gave_up")]


def test_a_budget_warning_is_no_stop_and_a_budget_block_is_told_once() -> None:
    assert kinds_of([seen(1, 30, "budget.exceeded", mode="warn")]) == []
    stopped = [seen(2, 31, "budget.exceeded", mode="enforce"), seen(3, 31, "protocol.blocked")]
    assert kinds_of(stopped) == [(2, "budget.stopped")]


def test_a_full_page_waits_for_its_last_transaction_to_be_whole() -> None:
    page = [seen(1, 40, "ci.failed"), seen(2, 41, "ci.failed"), seen(3, 41, "protocol.blocked")]
    assert [e.id for e in whole_transactions(page, full=True)] == [1]
    assert [e.id for e in whole_transactions(page, full=False)] == [1, 2, 3]
    one = [seen(1, 50, "ci.failed"), seen(2, 50, "protocol.blocked")]
    assert [e.id for e in whole_transactions(one, full=True)] == [1, 2]  # nothing else to wait for


def _message(link: str | None = "https://tg.example.test"):
    return compose(
        kind="run.blocked",
        event_id=9,
        event_type="protocol.blocked",
        event_message="CI failed <script>&",
        at="2026-12-08T00:00:00+00:00",
        project=(1, "shop"),
        run=(2, "0002-add-login"),
        step=(3, "1: login-form"),
        public_url=link,
    )


def test_the_json_body_is_signed_with_hmac_sha256_of_its_exact_bytes() -> None:
    body = json_body(_message(), 77)
    expected = hmac.new(b"key-0123456789abcdef", body, hashlib.sha256).hexdigest()
    assert signature("key-0123456789abcdef", body) == f"sha256={expected}"
    decoded = json.loads(body)
    assert decoded["delivery"] == 77
    assert decoded["link"] == "https://tg.example.test/console/protocols/2"
    assert decoded["step"] == {"id": 3, "name": "1: login-form"}


def test_slack_text_escapes_its_control_characters_and_has_no_button_without_a_link() -> None:
    payload = json.loads(slack_body(_message(link=None)))
    section = payload["blocks"][1]["text"]["text"]
    assert "&lt;script&gt;&amp;" in section
    assert [b["type"] for b in payload["blocks"]] == ["header", "section"]
