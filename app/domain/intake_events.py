"""The event types of issue intake and triggers: (name, summary, payload keys), spliced into the
catalogue of app/domain/events.py."""

from __future__ import annotations

_ISSUE = ("issue", "url", "provider", "via")

INTAKE_EVENT_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("intake.run_created", "An open issue with the project's intake label became this run.", _ISSUE),
    (
        "intake.run_cancelled",
        "The run's issue was closed or lost its intake label: the run is cancelled (`reason`).",
        (*_ISSUE, "reason"),
    ),
    (
        "intake.waiting",
        "A labelled issue also carries the blocked label: no run until it goes.",
        (*_ISSUE, "reason"),
    ),
    (
        "intake.commented",
        "A milestone of the run (`milestone`) was commented on its issue.",
        ("issue", "milestone"),
    ),
    (
        "schedule.created",
        "A cron schedule was added to the project.",
        ("schedule", "cron", "title", "enabled"),
    ),
    ("schedule.deleted", "A cron schedule was deleted.", ("schedule",)),
    ("schedule.fired", "A schedule's due time (`due_at`) created this run.", ("schedule", "due_at")),
    ("trigger.secret_set", "The project's trigger webhook secret was made or replaced.", ()),
    ("trigger.fired", "A signed trigger webhook delivery created this run.", ("delivery",)),
)
