"""GitLab webhook payloads → signals: `Pipeline Hook` and `Merge Request Hook`.

A merge request pipeline runs on `refs/merge-requests/<iid>/head`, not on the branch; its branch is
the MR's source branch (when the payload names the MR), else the run is found by its MR number.
Pipelines of MRs from another project (a fork) and of tags are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from app.domain.ci import CiResult, CiSignal, IgnoredSignal, MergeSignal, Provider, clean_text
from app.forges.payloads import branch, field, items, link, number, repository, sha, text

GITLAB = Provider.GITLAB
PIPELINE_HOOK = "Pipeline Hook"
MERGE_REQUEST_HOOK = "Merge Request Hook"
STATUSES = {"success": CiResult.PASSED, "failed": CiResult.FAILED}
_MR_REF = re.compile(r"refs/merge-requests/(\d{1,9})/head")

Signal = CiSignal | MergeSignal | IgnoredSignal


def parse_gitlab(event: str, payload: Any) -> Signal:
    """The signal a GitLab delivery of type `event` (X-Gitlab-Event) carries."""
    repo = repository(text(payload, "project", "path_with_namespace"))
    if event not in (PIPELINE_HOOK, MERGE_REQUEST_HOOK):
        return IgnoredSignal(provider=GITLAB, reason=f"{event} events are not used", repository=repo)
    if repo is None:
        return IgnoredSignal(provider=GITLAB, reason=f"{event} without a project")
    if event == PIPELINE_HOOK:
        return _pipeline(payload, repo)
    return _merge_request(payload, repo)


def _ignored(repo: str, reason: str) -> IgnoredSignal:
    return IgnoredSignal(provider=GITLAB, reason=reason, repository=repo)


def _from_fork(merge_request: Any) -> bool:
    source, target = number(merge_request, "source_project_id"), number(merge_request, "target_project_id")
    return source is not None and source != target


def _pipeline(payload: Any, repo: str) -> Signal:
    attributes = field(payload, "object_attributes")
    status = text(attributes, "status")
    result = STATUSES.get(status or "")
    if result is None:
        return _ignored(repo, f"pipeline {status or 'without status'}: no verdict")
    if field(attributes, "tag") is True:
        return _ignored(repo, "pipeline of a tag")
    merge_request = field(payload, "merge_request")
    if _from_fork(merge_request):
        return _ignored(repo, "pipeline of a merge request from a fork")
    commit = sha(text(attributes, "sha"))
    ref = text(attributes, "ref") or ""
    mr_ref = _MR_REF.fullmatch(ref)
    pr_number = int(mr_ref.group(1)) if mr_ref else None
    source_branch = branch(text(merge_request, "source_branch"))
    head = source_branch if mr_ref else branch(ref)
    if commit is None or (head is None and pr_number is None):
        return _ignored(repo, f"pipeline without a commit SHA or a branch ({clean_text(ref, 80)})")
    failed = [
        clean_text(text(build, "name"), 100) + _reason(build)
        for build in items(payload, "builds")
        if text(build, "status") == "failed"
    ]
    summary = f"pipeline {status}" + (": failed jobs " + ", ".join(failed[:20]) if failed else "")
    return CiSignal(
        provider=GITLAB,
        repository=repo,
        branches=(head,) if head else (),
        pr_number=pr_number,
        sha=commit,
        result=result,
        source="pipeline",
        name=f"pipeline {number(attributes, 'id') or ''}".strip(),
        summary=clean_text(summary),
        url=link(text(attributes, "url")),
    )


def _reason(build: Any) -> str:
    reason = clean_text(text(build, "failure_reason"), 100)
    return f" ({reason})" if reason else ""


def _merge_request(payload: Any, repo: str) -> Signal:
    attributes = field(payload, "object_attributes")
    if text(attributes, "action") != "merge" and text(attributes, "state") != "merged":
        return _ignored(repo, f"merge request {text(attributes, 'action') or 'event'}")
    if _from_fork(attributes):
        return _ignored(repo, "merge request from a fork")
    source = branch(text(attributes, "source_branch"))
    iid = number(attributes, "iid")
    if source is None or iid is None:
        return _ignored(repo, "merged merge request without a source branch or number")
    return MergeSignal(
        provider=GITLAB,
        repository=repo,
        branch=source,
        pr_number=iid,
        sha=sha(text(attributes, "last_commit", "id")),
        url=link(text(attributes, "url")),
    )
