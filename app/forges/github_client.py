"""GitHub's REST API for pull requests (find, open, update, comment on, read, merge) and issues (list the
labelled ones, comment on one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from app.domain.ci import Provider
from app.domain.intake import Issue, parse_github_issue
from app.errors import CIError
from app.forges.client import ISSUE_PAGE, MAX_ISSUE_PAGES, MergeAnswer, PullRequest, RestClient

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
        found: list[Issue] = []
        for page in range(1, MAX_ISSUE_PAGES + 1):
            query = {"labels": label, "state": "open", "per_page": str(ISSUE_PAGE), "page": str(page)}
            entries = await self.call("GET", f"{self._repo_path}/issues", query=query)
            if not isinstance(entries, list):
                raise CIError("GET issues: GitHub answered something other than a list")
            for entry in entries:  # the list holds pull requests too: those are skipped
                issue = parse_github_issue(entry)
                if issue is not None:
                    found.append(issue.model_copy(update={"repository": self.repository}))
            if len(entries) < ISSUE_PAGE:
                return found, True
        return found, False

    async def get(self, number: int) -> PullRequest:
        return _pull(await self.call("GET", f"{self._repo_path}/pulls/{int(number)}"))

    async def merge(self, number: int, sha: str) -> MergeAnswer:
        path = f"{self._repo_path}/pulls/{int(number)}/merge"
        return await self.refusable("PUT", path, body={"sha": sha}, refusals=MERGE_REFUSALS)


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
