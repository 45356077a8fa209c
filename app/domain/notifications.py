"""Notifications: which happenings call for a person, and what each channel is sent (no I/O here).

A notification *kind* is what a person subscribes to; it is read from the event log, one committed
transaction at a time, because a transaction says more than its events one by one: a run blocked by a
CI failure that also sent the step back to its agent (`ci.fix_requested`) needs nobody; one blocked
by a CI failure with no fix attempt left is `ci.gave_up`; one blocked by a budget is `budget.stopped`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

KINDS: dict[str, str] = {
    "run.blocked": "A run is blocked and waits for a person (retry, approve, or cancel it).",
    "step.needs_input": "A step asks a person for input before it goes on.",
    "budget.stopped": "A budget refused an agent run: raise it, or let the run stop.",
    "ci.gave_up": "CI failed and no fix attempt is left: the step and its run are blocked.",
    "pr.ready": "The run's PR/MR was opened and is ready for review.",
    "run.completed": "A run completed.",
    "run.failed": "A run failed.",
    "run.cancelled": "A run was cancelled.",
}

# The events the classifier reads (the others never lead to a notification).
WATCHED_EVENTS: tuple[str, ...] = (
    "protocol.blocked",
    "protocol.completed",
    "protocol.failed",
    "protocol.cancelled",
    "step.needs_input",  # added by another change; routed here as soon as it is recorded
    "budget.exceeded",
    "ci.failed",
    "ci.fix_requested",
    "pr.opened",
)

SIGNATURE_HEADER = "X-TasksGodzilla-Signature"  # `sha256=<hex HMAC-SHA256 of the body>`
DELIVERY_HEADER = "X-TasksGodzilla-Delivery"  # one id per notification, the same on every retry
KIND_HEADER = "X-TasksGodzilla-Kind"


class ChannelType(StrEnum):
    WEBHOOK = "webhook"  # a generic JSON POST, signed
    SLACK = "slack"  # a Slack-compatible incoming webhook
    EMAIL = "email"  # SMTP, with the service's SMTP settings


@dataclass(frozen=True)
class Seen:
    """An event as the classifier needs it."""

    id: int
    txid: int
    event_type: str
    protocol_run_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """One notification to route: the event it is about, and its kind."""

    event_id: int
    kind: str


def classify(events: Sequence[Seen]) -> list[Notice]:
    """The notifications these committed events call for (whole transactions only), in log order."""
    notices: list[Notice] = []
    for group in _by_transaction(events):
        fixing = {e.protocol_run_id for e in group if e.event_type == "ci.fix_requested"}
        ci_failed = {e.protocol_run_id for e in group if e.event_type == "ci.failed"}
        stopped = {e.protocol_run_id for e in group if _budget_stop(e)}
        for event in group:
            kind = _kind_of(event, fixing=fixing, ci_failed=ci_failed, stopped=stopped)
            if kind is not None:
                notices.append(Notice(event.id, kind))
    return notices


def _by_transaction(events: Sequence[Seen]) -> list[list[Seen]]:
    groups: list[list[Seen]] = []
    for event in events:
        if groups and groups[-1][0].txid == event.txid:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def _budget_stop(event: Seen) -> bool:
    return event.event_type == "budget.exceeded" and event.payload.get("mode") != "warn"


def _kind_of(
    event: Seen, *, fixing: set[int | None], ci_failed: set[int | None], stopped: set[int | None]
) -> str | None:
    kind = event.event_type
    run = event.protocol_run_id
    if kind == "protocol.blocked":
        if run in fixing or run in stopped:
            return None  # back with its agent already, or told as `budget.stopped`
        return "ci.gave_up" if run in ci_failed else "run.blocked"
    if kind in ("protocol.completed", "protocol.failed", "protocol.cancelled"):
        return "run." + kind.split(".", 1)[1]
    if kind == "step.needs_input":
        return "step.needs_input"
    if _budget_stop(event):
        return "budget.stopped"
    if kind == "pr.opened":
        return "pr.ready"
    return None


def whole_transactions(events: Sequence[Seen], *, full: bool) -> list[Seen]:
    """A page of the log cut after its last whole transaction: a `full` page (the limit reached) may
    end inside one, which waits for the next read (unless it is the only one: then it is taken)."""
    if not full or not events:
        return list(events)
    last = events[-1].txid
    kept = [e for e in events if e.txid != last]
    return kept or list(events)


def unknown_kinds(kinds: Sequence[str]) -> list[str]:
    return [k for k in kinds if k not in KINDS]


@dataclass(frozen=True)
class Message:
    """What happened, in words, and where to see it."""

    kind: str
    title: str
    text: str
    project: str
    project_id: int
    run: str | None
    run_id: int | None
    step: str | None
    step_id: int | None
    event_id: int
    event_type: str
    link: str | None
    at: str

    def as_json(self, delivery_id: int) -> dict[str, Any]:
        """The generic webhook's body (documented in the README)."""
        return {
            "delivery": delivery_id,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "project": {"id": self.project_id, "name": self.project},
            "run": None if self.run_id is None else {"id": self.run_id, "name": self.run},
            "step": None if self.step_id is None else {"id": self.step_id, "name": self.step},
            "event": {"id": self.event_id, "type": self.event_type},
            "link": self.link,
            "at": self.at,
        }


TITLES = {
    "run.blocked": "Run blocked",
    "step.needs_input": "A step needs input",
    "budget.stopped": "Budget stop",
    "ci.gave_up": "CI failed (no fix attempt left)",
    "pr.ready": "PR ready for review",
    "run.completed": "Run completed",
    "run.failed": "Run failed",
    "run.cancelled": "Run cancelled",
    "test": "Test message",
}


def console_link(public_url: str | None, project_id: int, run_id: int | None) -> str | None:
    if not public_url:
        return None
    base = public_url.rstrip("/")
    return (
        f"{base}/console/protocols/{run_id}"
        if run_id is not None
        else f"{base}/console/projects/{project_id}"
    )


def compose(
    *,
    kind: str,
    event_id: int,
    event_type: str,
    event_message: str,
    at: str,
    project: tuple[int, str],
    run: tuple[int, str] | None,
    step: tuple[int, str] | None,
    public_url: str | None,
) -> Message:
    """The message of one notification: project, run and step named, what happened, a console link."""
    where = f"{project[1]}" + (f" / {run[1]}" if run else "") + (f" / {step[1]}" if step else "")
    title = f"[{project[1]}] {TITLES.get(kind, kind)}" + (f": {run[1]}" if run else "")
    return Message(
        kind=kind,
        title=title,
        text=f"{TITLES.get(kind, kind)} — {where}: {event_message}",
        project=project[1],
        project_id=project[0],
        run=run[1] if run else None,
        run_id=run[0] if run else None,
        step=step[1] if step else None,
        step_id=step[0] if step else None,
        event_id=event_id,
        event_type=event_type,
        link=console_link(public_url, project[0], run[0] if run else None),
        at=at,
    )


def json_body(message: Message, delivery_id: int) -> bytes:
    return json.dumps(message.as_json(delivery_id), separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_body(message: Message) -> bytes:
    """An incoming-webhook payload as Slack documents it: `text` (the fallback) and `blocks`."""
    fields = [{"type": "mrkdwn", "text": f"*Project*\n{_mrkdwn(message.project)}"}]
    if message.run:
        fields.append({"type": "mrkdwn", "text": f"*Run*\n{_mrkdwn(message.run)}"})
    if message.step:
        fields.append({"type": "mrkdwn", "text": f"*Step*\n{_mrkdwn(message.step)}"})
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _mrkdwn(message.text)[:3000]},
            "fields": fields,
        },
    ]
    if message.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in console"},
                        "url": message.link,
                    }
                ],
            }
        )
    return json.dumps({"text": message.text, "blocks": blocks}).encode()


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, as its docs require."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_text(message: Message) -> str:
    lines = [message.text, "", f"Project: {message.project}"]
    if message.run:
        lines.append(f"Run: {message.run} (#{message.run_id})")
    if message.step:
        lines.append(f"Step: {message.step}")
    lines.append(f"Event: {message.event_type} #{message.event_id} at {message.at}")
    if message.link:
        lines += ["", message.link]
    return "\n".join(lines) + "\n"
