"""Issue intake as the service understands it, whichever forge sent the issue: what an issue is, what
its state asks of the run it became, and what of that run's progress the issue should hear.

Rules (decided from records alone):
  - an open issue carrying the project's intake label and not its blocked label wants a run;
  - one run per issue: a redelivered or edited issue changes nothing while its run exists;
  - closed or unlabelled, its unfinished run is cancelled, with that reason;
  - open and labelled again, it gets a new run only if its last one was cancelled by intake
    (a run an operator cancelled, or one that finished, is never replaced behind their back);
  - a blocked issue waits: no run until the blocked label goes (a run already going carries on).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.domain.ci import Provider, clean_text
from app.domain.records import Record
from app.domain.statuses import ProtocolStatus
from app.domain.visible import hidden_character

MAX_BODY_CHARS = 20_000  # a run's description holds as much (app.services.planning)
MAX_TITLE_CHARS = 200
DEFAULT_BLOCKED_LABEL = "blocked"
FINISHED = frozenset({ProtocolStatus.COMPLETED, ProtocolStatus.FAILED, ProtocolStatus.CANCELLED})


class Issue(BaseModel):
    """An issue as a delivery or the forge's API tells it, made safe to store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "issue"
    provider: Provider
    repository: str
    number: int
    url: str = ""
    title: str
    body: str = ""
    open: bool
    labels: tuple[str, ...] = ()


def visible_only(text: str, *, multiline: bool) -> str:
    """`text` without the characters the API would refuse (bidi controls, zero-width, NUL...)."""
    return "".join(ch for ch in text if hidden_character(ch, multiline=multiline) is None)


def issue_title(number: int, title: Any) -> str:
    """A run title from an untrusted issue title: visible, one line, capped; `Issue #N` when empty."""
    text = visible_only(unicodedata.normalize("NFC", str(title or "")), multiline=False)
    text = " ".join(text.split())[:MAX_TITLE_CHARS].strip()
    return text or f"Issue #{number}"


def issue_body(body: Any, limit: int = MAX_BODY_CHARS) -> str:
    """A run description from an untrusted issue body: hidden characters stripped, size-capped."""
    text = visible_only(str(body or "").replace("\r\n", "\n"), multiline=True).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_github_issue(payload: Any) -> Issue | None:
    """GitHub's `issues` event (or one entry of GET /repos/…/issues); None for a pull request."""
    issue = payload.get("issue") if isinstance(payload, dict) and "issue" in payload else payload
    repo = payload.get("repository") if isinstance(payload, dict) else None
    if not isinstance(issue, dict) or "pull_request" in issue or not isinstance(issue.get("number"), int):
        return None
    full_name = repo.get("full_name") if isinstance(repo, dict) else None
    return _issue(
        Provider.GITHUB,
        full_name if isinstance(full_name, str) else "",
        issue["number"],
        issue.get("html_url"),
        issue.get("title"),
        issue.get("body"),
        issue.get("state") == "open",
        [label.get("name") for label in issue.get("labels") or [] if isinstance(label, dict)],
    )


def parse_gitlab_issue(payload: Any) -> Issue | None:
    """GitLab's `Issue Hook` (object_kind `issue`) or one entry of GET /projects/:id/issues."""
    if not isinstance(payload, dict):
        return None
    if "object_attributes" in payload:
        attributes, project = payload["object_attributes"], payload.get("project")
        labels = [label.get("title") for label in payload.get("labels") or [] if isinstance(label, dict)]
        repository = project.get("path_with_namespace") if isinstance(project, dict) else None
    else:
        attributes, labels, repository = payload, payload.get("labels") or [], None
        references = payload.get("references")
        if isinstance(references, dict) and isinstance(references.get("full"), str):
            repository = references["full"].split("#", 1)[0]
    if not isinstance(attributes, dict) or not isinstance(attributes.get("iid"), int):
        return None
    return _issue(
        Provider.GITLAB,
        repository if isinstance(repository, str) else "",
        attributes["iid"],
        attributes.get("url") or attributes.get("web_url"),
        attributes.get("title"),
        attributes.get("description"),
        attributes.get("state") == "opened",
        labels,
    )


def _issue(
    provider: Provider, repo: str, number: int, url: Any, title: Any, body: Any, is_open: bool, labels: list
) -> Issue:
    return Issue(
        provider=provider,
        repository=repo,
        number=number,
        url=clean_text(url, 500) if isinstance(url, str) and url.startswith("https://") else "",
        title=issue_title(number, title),
        body=issue_body(body),
        open=is_open,
        labels=tuple(clean_text(label, 100) for label in labels if isinstance(label, str))[:100],
    )


class IntakeAction(StrEnum):
    CREATE = "create"  # a new run for the issue
    CANCEL = "cancel"  # cancel its unfinished run
    WAIT = "wait"  # it wants a run but is blocked
    NOTHING = "nothing"


@dataclass(frozen=True)
class Decision:
    action: IntakeAction
    reason: str


def decide(
    issue: Issue,
    *,
    label: str,
    blocked_label: str | None,
    run_status: ProtocolStatus | None,
    cancelled_by_intake: bool,
) -> Decision:
    """What the issue's state asks of its run (see the module's rules)."""
    labelled = has_label(issue.labels, label)
    blocked = blocked_label is not None and has_label(issue.labels, blocked_label)
    has_run = run_status is not None and not (run_status is ProtocolStatus.CANCELLED and cancelled_by_intake)
    unfinished = run_status is not None and run_status not in FINISHED
    if not issue.open or not labelled:
        why = "the issue was closed" if not issue.open else f"the label {label!r} was removed"
        if unfinished:
            return Decision(IntakeAction.CANCEL, why)
        return Decision(IntakeAction.NOTHING, why)
    if has_run:
        return Decision(IntakeAction.NOTHING, "the issue has its run already")
    if blocked:
        return Decision(IntakeAction.WAIT, f"the issue is labelled {blocked_label!r}")
    return Decision(IntakeAction.CREATE, f"an open issue labelled {label!r}")


def has_label(labels: tuple[str, ...], wanted: str) -> bool:
    return any(label.casefold() == wanted.casefold() for label in labels)


@dataclass(frozen=True)
class Milestone:
    key: str
    text: str


def milestones(
    *, run_name: str, run_url: str, status: ProtocolStatus, pr_url: str | None, reason: str = ""
) -> list[Milestone]:
    """The progress of an issue's run worth a comment on the issue, in order (posted once each)."""
    found = [Milestone("created", f"TasksGodzilla took this issue in as protocol run {run_name}: {run_url}")]
    if status not in (ProtocolStatus.PENDING, ProtocolStatus.CANCELLED) or pr_url:
        found.append(Milestone("started", f"Protocol run {run_name} started."))
    if pr_url:
        found.append(Milestone("pr", f"Protocol run {run_name} opened its pull request: {pr_url}"))
    if status is ProtocolStatus.COMPLETED:
        found.append(Milestone("completed", f"Protocol run {run_name} completed."))
    elif status is ProtocolStatus.FAILED:
        found.append(Milestone("failed", f"Protocol run {run_name} failed."))
    elif status is ProtocolStatus.CANCELLED:
        said = f": {reason}" if reason else "."
        found.append(Milestone("cancelled", f"Protocol run {run_name} was cancelled{said}"))
    return found


class IntakeIssue(Record):
    """A forge issue a project took in: its last known state and the run it became."""

    id: int
    project_id: int
    provider: Provider
    number: int
    url: str
    title: str
    open: bool
    labels: list[str]
    protocol_run_id: int | None
    cancelled_by_intake: bool
    cancel_reason: str
    posted: list[str]
    created_at: datetime
    updated_at: datetime
