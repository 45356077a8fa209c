"""The catalogue of event types: one per kind of happening, named `noun.verb`, payload documented here.

An event belongs to a project, and optionally to one protocol run and one step of it. An operator
action that concerns no project (an organisation created, its token issued, a pack added) belongs to
an organisation or to the whole service instead: it goes to the audit trail only (app/store/audit.py).
Every event written for an operator action carries `actor` in its payload ({kind, id, label, via}:
app/domain/actors.py), added where it is written.
Status changes are named after the status reached (`protocol.blocked`, `step.needs_qa`) and carry
`{"from": <old status>, "to": <new status>}` plus whatever the caller adds (`reason`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain.intake_events import INTAKE_EVENT_KINDS
from app.domain.statuses import ProtocolStatus, StepStatus


@dataclass(frozen=True)
class EventKind:
    name: str
    summary: str
    payload: tuple[str, ...] = ()
    audit_only: bool = False  # about no project: only the audit trail holds it, never the event log


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store gives it an id and a time."""

    project_id: int | None  # None: an action about an organisation or the service (audit trail only)
    event_type: str
    message: str
    protocol_run_id: int | None = None
    step_run_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    organisation_id: int | None = None  # of an action about no project (a project's is its own)

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_KINDS:
            raise ValueError(f"unknown event type {self.event_type!r}")
        if self.project_id is None and self.protocol_run_id is not None:
            raise ValueError("an event about a protocol run must name its project")
        if (self.project_id is None) is not EVENT_KINDS[self.event_type].audit_only:
            raise ValueError(f"{self.event_type!r} is about a project exactly when it is in the event log")
        if self.step_run_id is not None and self.protocol_run_id is None:
            raise ValueError("an event about a step must name the step's protocol run")


_STATUS_PAYLOAD = ("from", "to", "reason")

_KINDS = [
    EventKind("project.created", "A project was registered.", ("name", "git_url", "local_path")),
    EventKind("project.updated", "A project's settings changed (`fields`: their names).", ("fields",)),
    EventKind(
        "project.deleted",
        "A project was deleted with its runs and events; the audit trail keeps this and its earlier actions.",
        ("name",),
    ),
    EventKind(
        "project.token_issued", "A project token was issued (replacing any earlier one).", ("fingerprint",)
    ),
    EventKind(
        "branch.deleted",
        "A person deleted a remote branch (`deleted`: false when none was there).",
        ("branch", "deleted"),
    ),
    EventKind("organisation.created", "An organisation was created.", ("name", "slug"), audit_only=True),
    EventKind(
        "organisation.token_issued",
        "An organisation token was issued, replacing any earlier one.",
        ("fingerprint",),
        audit_only=True,
    ),
    EventKind(
        "console.signed_in",
        "Someone signed in to the console (the actor: with which token).",
        (),
        audit_only=True,
    ),
    EventKind("console.signed_out", "A console session was signed out.", (), audit_only=True),
    EventKind("policy.pack_created", "A policy pack version was added.", ("key", "version"), audit_only=True),
    EventKind(
        "step.secrets_scrubbed",
        "Known secrets were replaced in files a step's agent wrote (a binary file holding one is left "
        "out) before its commit (`files`: path → setting names, never values).",
        ("files",),
    ),
    EventKind(
        "worktree.removed",
        "A finished run's worktree was removed from a machine's disk after the retention (its branch "
        "stays; a later job rebuilds the worktree).",
        ("machine", "finished_at"),
    ),
    EventKind("step.run_requested", "A person queued a step's execution.", ("step_index",)),
    EventKind("qa.requested", "A person queued QA of a step.", ("step_index",)),
    EventKind("pr.requested", "A person queued publishing (push and PR/MR) before the last step.", ()),
    EventKind("project.setup_requested", "A person queued the project's setup again.", ()),
    EventKind("project.setup_started", "The setup job began.", ("attempt",)),
    EventKind("project.ready", "The repository is cloned or located.", ("local_path", "base_branch")),
    EventKind("project.setup_failed", "Setup gave up.", ("reason",)),
    EventKind(
        "setup.clarifications",
        "Questions for the operator, each with a recommended answer.",
        ("questions", "blocking"),
    ),
    EventKind(
        "setup.engines",
        "Each engine checked from the project's repository: status, version or error, stages using it.",
        ("engines",),
    ),
    EventKind("setup.discovery", "A discovery agent described the repository.", ("report", "status")),
    EventKind("setup.answered", "The operator answered setup questions.", ("answers", "by")),
    EventKind("plan.accepted", "A plan passed its guardrails and was written.", ("files", "steps", "commit")),
    EventKind("plan.rejected", "A plan failed its guardrails; nothing was written.", ("problems",)),
    EventKind(
        "policy.finding",
        "The policy pack asks for something the subject lacks (app/domain/findings.py: CATALOGUE).",
        ("finding", "fingerprint", "project_id", "protocol_run_id", "step_run_id"),
    ),
    EventKind(
        "policy.applied",
        "A run's effective policy was resolved and recorded when planning began.",
        ("pack_key", "pack_version", "hash", "base_commit", "repo_local", "problems"),
    ),
    EventKind(
        "project.policy_changed",
        "A project's policy pack, overrides or modes changed.",
        ("pack_key", "pack_version"),
    ),
    EventKind(
        "agent.started",
        "An agent run began.",
        ("agent_run_id", "stage", "engine", "model", "prompt_version"),
    ),
    EventKind(
        "agent.finished",
        "An agent run ended (`engine` and `model`: which answered, or failed).",
        ("agent_run_id", "stage", "engine", "model", "status", "tokens", "cost_usd", "duration_ms", "error"),
    ),
    EventKind(
        "agent.fallback",
        "An agent run failed for an engine reason (`reason`: could not start, crashed, timed out, rate "
        "limited, model unavailable): the stage's next engine or model is tried.",
        ("agent_run_id", "stage", "from_engine", "from_model", "to_engine", "to_model", "reason", "error"),
    ),
    EventKind(
        "step.committed",
        "A step's work was committed (`unchanged`: the agent changed nothing; the commit is empty).",
        ("sha", "files", "insertions", "deletions", "unchanged"),
    ),
    EventKind("step.retried", "A person sent a step back to be done again.", ("by", "note")),
    EventKind(
        "qa.verdict",
        "QA judged a step (`opinion`: only, or first/second of a critical step's two; `guardrails`: "
        "the findings of app/domain/qa_guardrails.py on this verdict).",
        (
            "verdict",
            "summary",
            "findings",
            "report",
            "agent_run_id",
            "opinion",
            "engine",
            "model",
            "guardrails",
        ),
    ),
    EventKind(
        "qa.disagreement",
        "A critical step's two QA opinions disagree: the step is blocked for a person (approve or retry).",
        ("opinions",),
    ),
    EventKind(
        "step.marked_critical",
        "A person marked a step critical (its QA takes a second opinion), or unmarked it.",
        ("by", "critical"),
    ),
    EventKind("step.approved", "A person passed a step by hand.", ("by", "note")),
    EventKind("branch.pushed", "The protocol branch was pushed.", ("remote", "branch", "sha")),
    EventKind("job.retrying", "A job failed recoverably and will run again.", ("job", "attempt", "error")),
    EventKind("job.gave_up", "A job failed for good.", ("job", "attempt", "error", "terminal")),
    EventKind(
        "budget.exceeded",
        "A budget refused an agent run (or, `mode` warn, would have): spent, or unable to cover the "
        "`expected` use of its `stage`; `limit` includes what was `raised`; `source` is the setting or "
        "the run's policy that set it.",
        ("scope", "limit", "used", "expected", "raised", "source", "mode", "stage"),
    ),
    EventKind(
        "budget.raised",
        "A person lifted one budget by `amount` (its step, run, month, or the project's).",
        ("scope", "amount", "by", "month"),
    ),
    EventKind(
        "budget.unpriced",
        "Agent runs of a model without a price count nothing against USD budgets (no fallback price set).",
        ("model",),
    ),
    EventKind("watchdog.stuck", "A step ran past the stuck limit.", ("seconds",)),
    EventKind(
        "protocol.created",
        "A protocol run was requested (by an operator, or by `source`: intake, schedule, trigger).",
        ("number", "name", "source"),
    ),
    *(EventKind(name, summary, payload) for name, summary, payload in INTAKE_EVENT_KINDS),
    # CI and forges
    EventKind(
        "ci.passed", "CI passed on a step's commit.", ("provider", "source", "name", "sha", "url", "delivery")
    ),
    EventKind(
        "ci.failed",
        "CI failed on a step's commit.",
        ("provider", "source", "name", "sha", "url", "summary", "delivery"),
    ),
    EventKind(
        "ci.fix_requested",
        "A CI failure sent the step back to its agent, with the failure as context: the failed job's "
        "name and the end of its log (capped, secrets redacted) when the forge gave them.",
        ("attempt", "limit", "sha", "failed_job", "job_url", "log_tail", "log_problem"),
    ),
    EventKind(
        "ci.mapped_to_head",
        "The original project's report.sh gave no commit: its result was applied to the run's head step.",
        ("provider", "protocol_run_id", "sha", "delivery"),
    ),
    EventKind(
        "review.received",
        "A reviewer with write access commented on (or requested changes to) the run's PR/MR.",
        ("provider", "number", "author", "state", "comments", "url", "delivery"),
    ),
    EventKind(
        "review.ignored",
        "A review of the run's PR/MR was not acted on, and why (no write access, the run's state).",
        ("provider", "number", "author", "reason", "delivery"),
    ),
    EventKind(
        "review.fix_requested",
        "Review comments sent the run's head step back to its agent (round `round` of `limit`).",
        ("provider", "number", "round", "limit"),
    ),
    EventKind(
        "review.limit_reached",
        "The run had its review rounds (TASKSGODZILLA_REVIEW_ROUNDS): it waits for a person.",
        ("provider", "number", "limit"),
    ),
    EventKind(
        "review.answered",
        "The agent's answer to each review comment it was given (done, clarification, disagreement).",
        ("replies", "unanswered", "received", "sha", "provider", "number"),
    ),
    EventKind(
        "review.replied",
        "The agent's answer to one review comment was posted on the PR/MR.",
        ("provider", "number", "comment_id", "key", "answer", "answered"),
    ),
    EventKind(
        "review.reply_failed",
        "Posting the agent's answers on the PR/MR gave up.",
        ("reason",),
    ),
    EventKind(
        "pr.opened", "A PR/MR was opened for the protocol branch.", ("provider", "number", "url", "sha")
    ),
    EventKind(
        "pr.updated",
        "The open PR/MR of the protocol branch was brought up to date.",
        ("provider", "number", "url", "sha"),
    ),
    EventKind(
        "pr.merged", "The protocol's PR/MR was merged.", ("provider", "number", "url", "sha", "delivery")
    ),
    EventKind(
        "pr.auto_merge_requested",
        "The run's policy allows auto-merge and it was safe: the forge merged its PR/MR at `sha`.",
        ("provider", "number", "sha"),
    ),
    EventKind(
        "pr.auto_merge_refused",
        "Auto-merge at `sha` was refused (`reason`: the forge's words, or why the job gave up); the "
        "PR/MR waits for a person's merge.",
        ("provider", "number", "sha", "reason"),
    ),
    # notifications
    EventKind(
        "notification.sent",
        "A notification of `kind` about event `event_id` reached channel `channel` (its host only).",
        ("channel", "channel_type", "kind", "event_id", "delivery", "attempt", "host"),
    ),
    EventKind(
        "notification.failed",
        "A notification's try failed (`final`: no try is left); `error` never holds the URL or a secret.",
        ("channel", "channel_type", "kind", "event_id", "delivery", "attempt", "host", "error", "final"),
    ),
    EventKind(
        "notification.channel_added",
        "A person added a notification channel for `kinds`.",
        ("channel", "channel_type", "kinds", "host"),
    ),
    EventKind("notification.channel_deleted", "A person deleted a notification channel.", ("channel",)),
    EventKind(
        "notification.tested",
        "A person sent a test message on a channel (`error`: why it did not arrive, never a secret).",
        ("channel", "delivered", "error"),
    ),
    EventKind(
        "webhook.ignored",
        "A forge delivery about this run changed nothing, and why.",
        ("provider", "event", "reason", "sha", "delivery"),
    ),
    *(
        EventKind(f"protocol.{status}", f"A protocol run became {status}.", _STATUS_PAYLOAD)
        for status in ProtocolStatus
        if status is not ProtocolStatus.PENDING
    ),
    EventKind("step.created", "A step run was created from the plan.", ("step_index", "name")),
    *(EventKind(f"step.{status}", f"A step run became {status}.", _STATUS_PAYLOAD) for status in StepStatus),
]

EVENT_KINDS: dict[str, EventKind] = {kind.name: kind for kind in _KINDS}


def protocol_status_event(target: ProtocolStatus) -> str:
    """The event type recorded when a protocol run reaches `target`."""
    return f"protocol.{target}"


def step_status_event(target: StepStatus) -> str:
    """The event type recorded when a step run reaches `target`."""
    return f"step.{target}"
