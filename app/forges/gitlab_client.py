"""GitLab's REST API (v4) for merge requests: find, open, update, comment on (a note), read, merge;
reply in a discussion; a member's access level; a failed job's trace; list labelled issues and add a
note to one."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from app.domain.ci import Provider
from app.domain.intake import Issue, parse_gitlab_issue
from app.errors import CIError, NotFoundError
from app.forges.client import (
    FailedJob,
    MergeAnswer,
    PullRequest,
    RestClient,
)

STATES = {"opened": "open", "merged": "merged", "closed": "closed", "locked": "open"}
# GitLab's refusals of a merge: 405 it cannot be accepted (draft, closed, a pipeline that must succeed
# has not), 406 a conflict, 409 the SHA is not the source branch's head, 422 refused (newer versions).
MERGE_REFUSALS = frozenset({405, 406, 409, 422})


class GitLabClient(RestClient):
    """One project (`group/name`, or a numeric id) on gitlab.com or a self-managed GitLab (`api_url`)."""

    provider = Provider.GITLAB

    def __init__(self, api_url: str, repository: str, token: str, *, timeout: float = 30.0) -> None:
        super().__init__(api_url, {"PRIVATE-TOKEN": token}, timeout=timeout)
        self.repository = repository
        # The API takes the URL-encoded path as the project id: `group%2Fname`.
        self._project = f"/projects/{quote(repository, safe='')}"

    async def find_open(self, branch: str) -> PullRequest | None:
        found = await self.call(
            "GET", f"{self._project}/merge_requests", query={"source_branch": branch, "state": "opened"}
        )
        if not isinstance(found, list):
            raise CIError("GET merge_requests: GitLab answered something other than a list")
        return _merge_request(found[0]) if found else None

    async def create(self, *, branch: str, base: str, title: str, body: str) -> PullRequest:
        payload = {
            "source_branch": branch,
            "target_branch": base,
            "title": title,
            "description": body,
            "remove_source_branch": False,
        }
        return _merge_request(await self.call("POST", f"{self._project}/merge_requests", body=payload))

    async def update(self, number: int, *, title: str, body: str) -> PullRequest:
        payload = {"title": title, "description": body}
        path = f"{self._project}/merge_requests/{int(number)}"
        return _merge_request(await self.call("PUT", path, body=payload))

    async def comment(self, number: int, body: str) -> None:
        await self.call("POST", f"{self._project}/merge_requests/{int(number)}/notes", body={"body": body})

    async def comment_issue(self, number: int, body: str) -> None:
        await self.call("POST", f"{self._project}/issues/{int(number)}/notes", body={"body": body})

    async def labelled_issues(self, label: str) -> tuple[list[Issue], bool]:
        query = {"labels": label, "state": "opened"}
        path = f"{self._project}/issues"
        return await self.issue_pages(
            path, query, parse_gitlab_issue, forge="GitLab", repository=self.repository
        )

    async def get(self, number: int) -> PullRequest:
        return _merge_request(await self.call("GET", f"{self._project}/merge_requests/{int(number)}"))

    async def merge(self, number: int, sha: str) -> MergeAnswer:
        path = f"{self._project}/merge_requests/{int(number)}/merge"
        return await self.refusable("PUT", path, body={"sha": sha}, refusals=MERGE_REFUSALS)

    async def reply(
        self, number: int, *, comment_id: int, kind: str, discussion_id: str | None, body: str
    ) -> None:
        if discussion_id is None:  # a note outside any thread: a new note on the MR
            await self.comment(number, body)
            return
        path = (
            f"{self._project}/merge_requests/{int(number)}/discussions/{quote(discussion_id, safe='')}/notes"
        )
        await self.call("POST", path, body={"body": body})

    async def access_level(self, user_id: int) -> int | None:
        """The user's access level on the project, inherited ones included (`members/all`); None
        for someone who is not a member."""
        try:
            member = await self.call("GET", f"{self._project}/members/all/{int(user_id)}")
        except NotFoundError:
            return None
        level = member.get("access_level") if isinstance(member, dict) else None
        return level if isinstance(level, int) else None

    async def failed_job(self, sha: str, tail_bytes: int) -> FailedJob | None:
        """The first failed job of the newest failed pipeline on `sha`, with its trace's end."""
        found = await self.call("GET", f"{self._project}/pipelines", query={"sha": sha, "status": "failed"})
        for pipeline in found if isinstance(found, list) else []:
            if not isinstance(pipeline, dict) or not isinstance(pipeline.get("id"), int):
                continue
            path = f"{self._project}/pipelines/{pipeline['id']}/jobs"
            jobs = await self.call("GET", path, query={"scope[]": "failed"})
            for job in jobs if isinstance(jobs, list) else []:
                if isinstance(job, dict) and isinstance(job.get("id"), int):
                    status, _, text = await self.text_tail(
                        f"{self._project}/jobs/{job['id']}/trace", tail_bytes
                    )
                    if status >= 300:
                        text = f"(the log could not be read: HTTP {status})"
                    url = job.get("web_url")
                    return FailedJob(
                        str(job.get("name") or "job"), text, url if isinstance(url, str) else None
                    )
        return None


def _merge_request(data: Any) -> PullRequest:
    if not isinstance(data, dict) or not isinstance(data.get("iid"), int):
        raise CIError("GitLab answered a merge request without an iid")
    return PullRequest(
        number=data["iid"],
        url=str(data.get("web_url") or ""),
        state=STATES.get(str(data.get("state")), "open"),
        head_sha=data.get("sha") if isinstance(data.get("sha"), str) else None,
    )
