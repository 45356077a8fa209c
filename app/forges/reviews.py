"""Review webhooks → signals: GitHub `pull_request_review` and `pull_request_review_comment`, GitLab
`Note Hook` on a merge request.

Heard: a submitted review that requests changes, or comments with a body; a created inline review
comment; a person's note on a merge request. Not heard: approvals, edits and deletions, GitLab's
system notes, reviews of a PR/MR from a fork, and the service's own replies (they carry its marker).
Whether the author may push is decided when the delivery is applied (GitLab asks its members API).
"""

from __future__ import annotations

from typing import Any

from app.domain.ci import IgnoredSignal, Provider, ReviewComment, ReviewSignal, clean_text
from app.domain.reviews import from_the_service
from app.forges.payloads import branch, field, link, number, repository, text

GITHUB_EVENTS = frozenset({"pull_request_review", "pull_request_review_comment"})
GITLAB_NOTE_HOOK = "Note Hook"
BODY_MAX = 20_000  # the signal's copy; the prompt caps again (app.domain.reviews)

Parsed = ReviewSignal | IgnoredSignal


def parse_review(provider: Provider, event: str, payload: Any) -> Parsed | None:
    """The signal of a review delivery; None when `event` is not one (other parsers take it)."""
    if provider is Provider.GITHUB and event in GITHUB_EVENTS:
        repo = repository(text(payload, "repository", "full_name"))
        if repo is None:
            return IgnoredSignal(provider=provider, reason=f"{event} without a repository")
        return _github(event, payload, repo)
    if provider is Provider.GITLAB and event == GITLAB_NOTE_HOOK:
        repo = repository(text(payload, "project", "path_with_namespace"))
        if repo is None:
            return IgnoredSignal(provider=provider, reason=f"{event} without a project")
        return _gitlab(payload, repo)
    return None


def _body(value: Any) -> str:
    return value[:BODY_MAX] if isinstance(value, str) else ""


def _github(event: str, payload: Any, repo: str) -> Parsed:
    def ignored(reason: str) -> IgnoredSignal:
        return IgnoredSignal(provider=Provider.GITHUB, reason=reason, repository=repo)

    pull = field(payload, "pull_request")
    action = text(payload, "action")
    if text(pull, "head", "repo", "full_name") != text(pull, "base", "repo", "full_name"):
        return ignored("a review of a pull request from a fork")
    head, pr_number = branch(text(pull, "head", "ref")), number(pull, "number")
    if head is None or pr_number is None:
        return ignored(f"{event} without a branch or pull request number")
    if event == "pull_request_review":
        review = field(payload, "review")
        state, body = (text(review, "state") or "").lower(), _body(text(review, "body"))
        if action != "submitted":
            return ignored(f"pull_request_review {action or 'without action'}")
        if state not in ("changes_requested", "commented"):
            return ignored(f"a review that is {state or 'without state'}: nothing to address")
        if state == "commented" and not body.strip():
            return ignored("a review without a body: its inline comments come as their own deliveries")
        author, review_id = field(review, "user"), number(review, "id")
        if review_id is None:
            return ignored("a review without an id")
        comments = (ReviewComment(id=review_id, kind="review", body=body),) if body.strip() else ()
        association, url = text(review, "author_association"), link(text(review, "html_url"))
    else:
        comment = field(payload, "comment")
        if action != "created":
            return ignored(f"pull_request_review_comment {action or 'without action'}")
        comment_id, body = number(comment, "id"), _body(text(comment, "body"))
        if comment_id is None or not body.strip():
            return ignored("a review comment without an id or a body")
        author, state = field(comment, "user"), "commented"
        line = number(comment, "line") or number(comment, "original_line")
        path = clean_text(text(comment, "path"), 300) or None
        comments = (ReviewComment(id=comment_id, kind="review_comment", body=body, path=path, line=line),)
        association, url = text(comment, "author_association"), link(text(comment, "html_url"))
    if any(from_the_service(c.body) for c in comments):
        return ignored("a reply the service posted itself")
    return ReviewSignal(
        provider=Provider.GITHUB,
        repository=repo,
        branch=head,
        pr_number=pr_number,
        author=clean_text(text(author, "login"), 100) or "someone",
        author_id=number(author, "id"),
        association=association,
        state=state,
        comments=comments,
        url=url,
    )


def _gitlab(payload: Any, repo: str) -> Parsed:
    def ignored(reason: str) -> IgnoredSignal:
        return IgnoredSignal(provider=Provider.GITLAB, reason=reason, repository=repo)

    note = field(payload, "object_attributes")
    merge_request = field(payload, "merge_request")
    if text(note, "noteable_type") != "MergeRequest" or merge_request is None:
        return ignored("a note on something other than a merge request")
    if field(note, "system") is True:
        return ignored("a system note")
    source, target = number(merge_request, "source_project_id"), number(merge_request, "target_project_id")
    if source is not None and source != target:
        return ignored("a note on a merge request from a fork")
    head, iid = branch(text(merge_request, "source_branch")), number(merge_request, "iid")
    note_id, body = number(note, "id"), _body(text(note, "note"))
    if head is None or iid is None or note_id is None or not body.strip():
        return ignored("a note without a branch, merge request number, id or text")
    if from_the_service(body):
        return ignored("a reply the service posted itself")
    path = clean_text(text(note, "position", "new_path"), 300) or None
    discussion = text(note, "discussion_id")
    user = field(payload, "user")
    return ReviewSignal(
        provider=Provider.GITLAB,
        repository=repo,
        branch=head,
        pr_number=iid,
        author=clean_text(text(user, "username"), 100) or "someone",
        author_id=number(user, "id"),
        state="note",
        comments=(
            ReviewComment(
                id=note_id,
                kind="note",
                body=body,
                path=path,
                line=number(note, "position", "new_line"),
                discussion_id=discussion if discussion and discussion.isalnum() else None,
            ),
        ),
        url=link(text(note, "url")),
    )
