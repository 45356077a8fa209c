"""GitHub's REST API for pull requests: find, open, update, comment on, read, merge; reply to review
comments; read a failed Actions job's log; list labelled issues and comment on one."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from app.domain.ci import Provider
from app.domain.intake import Issue, parse_github_issue
from app.errors import CIError
from app.forges.client import (
    FailedJob,
    MergeAnswer,
    PullRequest,
    RestClient,
)

API_VERSION = "2022-11-28"
# GitHub's refusals of a merge: 405 not mergeable (a conflict, a required check or review missing),
# 409 the head moved since the SHA given, 422 the request itself was refused.
MERGE_REFUSALS = frozenset({405, 409, 422})


class GitHubClient(RestClient):
    """One repository (`owner/name`) on GitHub or GitHub Enterprise (`api_url`)."""

    provider = Provider.GITHUB

    def __init__(self, api_url: str, repository: str, token: str, *, timeout: float = 30.0) -> None:
        super().__init__(
            api_url,
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            timeout=timeout,
        )
        self.repository = repository
        self._owner = repository.split("/", 1)[0]
        self._repo_path = "/repos/" + "/".join(quote(part, safe="") for part in repository.split("/"))

    async def find_open(self, branch: str) -> PullRequest | None:
        found = await self.call(
            "GET", f"{self._repo_path}/pulls", query={"head": f"{self._owner}:{branch}", "state": "open"}
        )
        if not isinstance(found, list):
            raise CIError("GET pulls: GitHub answered something other than a list")
        return _pull(found[0]) if found else None

    async def create(self, *, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"title": title, "head": branch, "base": base, "body": body}
        return _pull(await self.call("POST", f"{self._repo_path}/pulls", body=payload))

    async def update(self, number: int, *, title: str, body: str) -> PullRequest:
        payload = {"title": title, "body": body}
        return _pull(await self.call("PATCH", f"{self._repo_path}/pulls/{int(number)}", body=payload))

    async def comment(self, number: int, body: str) -> None:
        # PR conversation comments live on the issue that every PR is.
        await self.call("POST", f"{self._repo_path}/issues/{int(number)}/comments", body={"body": body})

    async def comment_issue(self, number: int, body: str) -> None:
        await self.comment(number, body)  # the same endpoint: every PR is an issue

    async def labelled_issues(self, label: str) -> tuple[list[Issue], bool]:
        # The list holds pull requests too: parse_github_issue skips them.
        query = {"labels": label, "state": "open"}
        path = f"{self._repo_path}/issues"
        return await self.issue_pages(
            path, query, parse_github_issue, forge="GitHub", repository=self.repository
        )

    async def get(self, number: int) -> PullRequest:
        return _pull(await self.call("GET", f"{self._repo_path}/pulls/{int(number)}"))

    async def merge(self, number: int, sha: str) -> MergeAnswer:
        path = f"{self._repo_path}/pulls/{int(number)}/merge"
        return await self.refusable("PUT", path, body={"sha": sha}, refusals=MERGE_REFUSALS)

    async def reply(
        self, number: int, *, comment_id: int, kind: str, discussion_id: str | None, body: str
    ) -> None:
        if kind == "review_comment":  # in the comment's own thread on the diff
            path = f"{self._repo_path}/pulls/{int(number)}/comments/{int(comment_id)}/replies"
            await self.call("POST", path, body={"body": body})
        else:  # a review's body has no thread: the PR's conversation
            await self.comment(number, body)

    async def failed_job(self, sha: str, tail_bytes: int) -> FailedJob | None:
        """The first failed job of the first failed Actions workflow run on `sha`, with its log's end
        (GET …/actions/jobs/{id}/logs answers a redirect to the log, fetched without our token)."""
        found = await self.call("GET", f"{self._repo_path}/actions/runs", query={"head_sha": sha})
        runs = found.get("workflow_runs") if isinstance(found, dict) else None
        for run in runs if isinstance(runs, list) else []:
            if (
                not isinstance(run, dict)
                or run.get("conclusion") not in FAILED
                or not isinstance(run.get("id"), int)
            ):
                continue
            listed = await self.call("GET", f"{self._repo_path}/actions/runs/{run['id']}/jobs")
            jobs = listed.get("jobs") if isinstance(listed, dict) else None
            for job in jobs if isinstance(jobs, list) else []:
                if (
                    isinstance(job, dict)
                    and job.get("conclusion") in FAILED
                    and isinstance(job.get("id"), int)
                ):
                    return await self._job_log(job, tail_bytes)
        return None

    async def _job_log(self, job: dict[str, Any], tail_bytes: int) -> FailedJob:
        path = f"{self._repo_path}/actions/jobs/{job['id']}/logs"
        status, location, text = await self.text_tail(path, tail_bytes)
        if status in (301, 302, 303, 307, 308) and location.startswith(("https://", "http://")):
            status, _, text = await self.text_tail(location, tail_bytes, authenticated=False)
        if status >= 300:
            text = f"(the log could not be read: HTTP {status})"
        url = job.get("html_url")
        return FailedJob(str(job.get("name") or "job"), text, url if isinstance(url, str) else None)


FAILED = frozenset({"failure", "timed_out", "startup_failure"})


def _pull(data: Any) -> PullRequest:
    if not isinstance(data, dict) or not isinstance(data.get("number"), int):
        raise CIError("GitHub answered a pull request without a number")
    state = "merged" if data.get("merged") is True else str(data.get("state") or "open")
    head = data.get("head")
    head_sha = head.get("sha") if isinstance(head, dict) else None
    return PullRequest(
        number=data["number"],
        url=str(data.get("html_url") or ""),
        state=state,
        head_sha=head_sha if isinstance(head_sha, str) else None,
    )
