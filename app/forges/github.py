"""GitHub webhook payloads → signals: check_suite, check_run, workflow_run, status and pull_request.

Only finished results count (a `completed` suite, run or workflow; a `success`, `failure` or `error`
status); `neutral`, `skipped`, `cancelled` and `stale` are no verdict on the code and are ignored.
Anything coming from a fork (its head repository is not the base repository) is ignored: a fork can
push our commits, but its CI never moves our runs.
"""

from __future__ import annotations

from typing import Any

from app.domain.ci import CiResult, CiSignal, IgnoredSignal, MergeSignal, Provider, clean_text
from app.forges.payloads import branch, field, items, link, number, repository, sha, text

GITHUB = Provider.GITHUB
EVENTS = frozenset({"check_suite", "check_run", "workflow_run", "status", "pull_request"})
CONCLUSIONS = {
    "success": CiResult.PASSED,
    "failure": CiResult.FAILED,
    "timed_out": CiResult.FAILED,
    "startup_failure": CiResult.FAILED,
}
STATES = {"success": CiResult.PASSED, "failure": CiResult.FAILED, "error": CiResult.FAILED}

Signal = CiSignal | MergeSignal | IgnoredSignal


def parse_github(event: str, payload: Any) -> Signal:
    """The signal a GitHub delivery of type `event` (X-GitHub-Event) carries."""
    repo = repository(text(payload, "repository", "full_name"))
    if event not in EVENTS:
        return IgnoredSignal(provider=GITHUB, reason=f"{event} events are not used", repository=repo)
    if repo is None:
        return IgnoredSignal(provider=GITHUB, reason=f"{event} without a repository")
    parse = {
        "check_suite": _check_suite,
        "check_run": _check_run,
        "workflow_run": _workflow_run,
        "status": _status,
        "pull_request": _pull_request,
    }[event]
    return parse(payload, repo)


def _ignored(repo: str, reason: str) -> IgnoredSignal:
    return IgnoredSignal(provider=GITHUB, reason=reason, repository=repo)


def _from_fork(pull_requests: list[Any]) -> bool:
    """A pull request (as listed in a check suite or run) whose head lives in another repository."""
    for pull in pull_requests:
        head, base = field(pull, "head", "repo", "id"), field(pull, "base", "repo", "id")
        if head is None or head != base:
            return True
    return False


def _conclusion(repo: str, what: str, conclusion: str | None) -> CiResult | IgnoredSignal:
    result = CONCLUSIONS.get(conclusion or "")
    if result is None:
        return _ignored(repo, f"{what} concluded {conclusion or 'nothing'}: no verdict on the code")
    return result


def _check_suite(payload: Any, repo: str) -> Signal:
    suite = field(payload, "check_suite")
    if text(payload, "action") != "completed":
        return _ignored(repo, f"check_suite {text(payload, 'action') or 'without action'}")
    head_repo = text(suite, "head_repository", "full_name")
    if _from_fork(items(suite, "pull_requests")) or (head_repo is not None and head_repo != repo):
        return _ignored(repo, "check suite of a fork")
    result = _conclusion(repo, "check suite", text(suite, "conclusion"))
    if isinstance(result, IgnoredSignal):
        return result
    app_name = clean_text(text(suite, "app", "name"), 200)
    return _ci(
        repo, suite, "check_suite", result,
        name=app_name or "check suite",
        summary=f"check suite {app_name} {text(suite, 'conclusion')}".replace("  ", " "),
        url=link(text(suite, "url")),
    )  # fmt: skip


def _check_run(payload: Any, repo: str) -> Signal:
    run = field(payload, "check_run")
    if text(payload, "action") != "completed":
        return _ignored(repo, f"check_run {text(payload, 'action') or 'without action'}")
    pulls = items(run, "pull_requests") + items(run, "check_suite", "pull_requests")
    if _from_fork(pulls):
        return _ignored(repo, "check run of a fork")
    result = _conclusion(repo, "check run", text(run, "conclusion"))
    if isinstance(result, IgnoredSignal):
        return result
    if result is CiResult.PASSED:
        # One check run passing says nothing about the others; the check suite gives the verdict.
        return _ignored(repo, "a passing check run is one of many: the check suite decides")
    name = clean_text(text(run, "name"), 200)
    output = "\n".join(
        part
        for part in (clean_text(text(run, "output", "title")), clean_text(text(run, "output", "summary")))
        if part
    )
    return _ci(
        repo, {"head_sha": text(run, "head_sha"), "head_branch": text(run, "check_suite", "head_branch")},
        "check_run", result, name=name or "check run",
        summary=f"check run {name} {text(run, 'conclusion')}" + (f": {output}" if output else ""),
        url=link(text(run, "html_url") or text(run, "details_url")),
    )  # fmt: skip


def _workflow_run(payload: Any, repo: str) -> Signal:
    run = field(payload, "workflow_run")
    if text(payload, "action") != "completed":
        return _ignored(repo, f"workflow_run {text(payload, 'action') or 'without action'}")
    head_repo = text(run, "head_repository", "full_name")
    if head_repo != repo or _from_fork(items(run, "pull_requests")):
        return _ignored(repo, "workflow run of a fork")
    result = _conclusion(repo, "workflow run", text(run, "conclusion"))
    if isinstance(result, IgnoredSignal):
        return result
    name = clean_text(text(run, "name"), 200)
    return _ci(
        repo, run, "workflow_run", result, name=name or "workflow",
        summary=f"workflow {name} {text(run, 'conclusion')}", url=link(text(run, "html_url")),
    )  # fmt: skip


def _status(payload: Any, repo: str) -> Signal:
    state = text(payload, "state")
    result = STATES.get(state or "")
    if result is None:
        return _ignored(repo, f"status {state or 'without state'}: no verdict yet")
    commit = sha(text(payload, "sha"))
    if commit is None:
        return _ignored(repo, "status without a commit SHA")
    branches = tuple(b for b in (branch(text(item, "name")) for item in items(payload, "branches")) if b)
    context = clean_text(text(payload, "context"), 200)
    description = clean_text(text(payload, "description"))
    return CiSignal(
        provider=GITHUB,
        repository=repo,
        branches=branches,
        sha=commit,
        result=result,
        source="status",
        name=context or "status",
        summary=f"{context or 'status'} {state}" + (f": {description}" if description else ""),
        url=link(text(payload, "target_url")),
    )


def _pull_request(payload: Any, repo: str) -> Signal:
    pull = field(payload, "pull_request")
    action = text(payload, "action")
    if action != "closed":
        return _ignored(repo, f"pull_request {action or 'without action'}")
    if field(pull, "merged") is not True:
        return _ignored(repo, "pull request closed without merging")
    if text(pull, "head", "repo", "full_name") != text(pull, "base", "repo", "full_name"):
        return _ignored(repo, "pull request from a fork")
    head = branch(text(pull, "head", "ref"))
    pr_number = number(pull, "number") or number(payload, "number")
    if head is None or pr_number is None:
        return _ignored(repo, "merged pull request without a branch or number")
    return MergeSignal(
        provider=GITHUB,
        repository=repo,
        branch=head,
        pr_number=pr_number,
        sha=sha(text(pull, "head", "sha")),
        url=link(text(pull, "html_url")),
    )


def _ci(
    repo: str, head: Any, source: str, result: CiResult, *, name: str, summary: str, url: str | None
) -> Signal:
    commit = sha(text(head, "head_sha"))
    head_branch = branch(text(head, "head_branch"))
    if commit is None or head_branch is None:
        return _ignored(repo, f"{source} without a branch and commit SHA")
    return CiSignal(
        provider=GITHUB,
        repository=repo,
        branches=(head_branch,),
        sha=commit,
        result=result,
        source=source,
        name=name,
        summary=clean_text(summary),
        url=url,
    )
