"""A local stand-in for GitHub's and GitLab's REST APIs (pull/merge requests and issues), for tests.

It speaks their wire format as documented: GitHub's `/repos/{owner}/{repo}/pulls…` and
`/issues/{n}/comments` with `Authorization: Bearer`, answering `number`, `html_url`, `state`, `merged`,
`head.ref/sha`; GitLab's `/api/v4/projects/{url-encoded path}/merge_requests…` and `/notes` with
`PRIVATE-TOKEN`, answering `iid`, `web_url`, `state` (`opened`, `merged`, `closed`), `sha`. A wrong
token gets each forge's 401; opening a second PR/MR for a branch gets each forge's refusal. Merging
(`PUT …/pulls/{n}/merge`, `PUT …/merge_requests/{iid}/merge`, with an optional `sha` guard) answers as
each forge does: GitHub's 200 `{"sha", "merged": true, "message"}`, or 405 (not open, a conflict, a
required check) and 409 (the head moved); GitLab's 200 with the merged MR, or 405 (not open, a pipeline
that must succeed), 406 (a conflict) and 409 (the SHA is not the head). Issues: GitHub's
`GET /repos/{o}/{r}/issues?labels=&state=open` and `POST …/issues/{n}/comments`; GitLab's
`GET /projects/:id/issues?labels=&state=opened` and `POST …/issues/{iid}/notes`, paged by
`per_page`/`page`. Every request is recorded
(method, raw path, query, headers, JSON body) so tests can check what was sent.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.fake_forge_extras import ForgeExtras

GITHUB_TOKEN = "ghp_fake_token_0123456789"
GITLAB_TOKEN = "glpat-fake-token-0123456789"


@dataclass
class Received:
    method: str
    path: str  # raw, as sent (GitLab's project id stays `acme%2Fshop`)
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeForge:
    """Both forges in one server: GitHub at `/`, GitLab at `/api/v4`."""

    head_sha: Callable[[str], str | None] = lambda branch: None
    received: list[Received] = field(default_factory=list)
    pulls: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (repo, number) -> PR/MR
    comments: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    # Issues, in each forge's own shape (GitHub: `number`, GitLab: `iid`), and the comments on them.
    issues: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    issue_comments: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    # Checks the target branch's protection requires and that have not passed: merges are refused.
    required_checks: tuple[str, ...] = ()
    # PRs/MRs whose branch conflicts with its target: merges are refused.
    conflicts: set[tuple[str, int]] = field(default_factory=set)
    url: str = ""
    # Review replies, members, CI jobs and their logs (tests/support/fake_forge_extras.py).
    extras: ForgeExtras = field(default_factory=ForgeExtras)
    _numbers: Any = field(default_factory=lambda: itertools.count(1))

    # --- what tests look at --------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Received]:
        return [r for r in self.received if method is None or r.method == method]

    def merge(self, repo: str, number: int) -> dict[str, Any]:
        """Merge a PR/MR as a person would on the forge's web page."""
        pull = self.pulls[(repo, number)]
        if "iid" in pull:
            pull["state"] = "merged"
        else:
            pull.update(state="closed", merged=True, merged_at="2024-05-01T12:00:00Z")
        return pull

    def add_issue(
        self,
        provider: str,
        repo: str,
        number: int,
        *,
        title: str = "Fix the login",
        body: str = "It breaks.",
        labels: tuple[str, ...] = (),
        open: bool = True,
    ) -> dict[str, Any]:
        """An issue on the forge, as its REST API shows it (and as its webhook payload carries it)."""
        if provider == "github":
            issue = {
                "id": 9000 + number,
                "number": number,
                "title": title,
                "body": body,
                "state": "open" if open else "closed",
                "html_url": f"https://github.com/{repo}/issues/{number}",
                "labels": [{"id": i, "name": name, "color": "ededed"} for i, name in enumerate(labels)],
            }
        else:
            issue = {
                "id": 7000 + number,
                "iid": number,
                "project_id": 42,
                "title": title,
                "description": body,
                "state": "opened" if open else "closed",
                "web_url": f"https://gitlab.example.test/{repo}/-/issues/{number}",
                "labels": list(labels),
                "references": {"full": f"{repo}#{number}"},
            }
        self.issues[(repo, number)] = issue
        return issue

    # --- the server ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        repo = "/repos/{owner}/{name}"
        app.router.add_get(f"{repo}/pulls", self.github_list)
        app.router.add_post(f"{repo}/pulls", self.github_create)
        app.router.add_get(f"{repo}/pulls/{{number:\\d+}}", self.github_get)
        app.router.add_patch(f"{repo}/pulls/{{number:\\d+}}", self.github_update)
        app.router.add_post(f"{repo}/issues/{{number:\\d+}}/comments", self.github_comment)
        app.router.add_put(f"{repo}/pulls/{{number:\\d+}}/merge", self.github_merge)
        app.router.add_get(f"{repo}/issues", self.github_issues)
        project = "/api/v4/projects/{project}"
        app.router.add_get(f"{project}/merge_requests", self.gitlab_list)
        app.router.add_post(f"{project}/merge_requests", self.gitlab_create)
        app.router.add_get(f"{project}/merge_requests/{{iid:\\d+}}", self.gitlab_get)
        app.router.add_put(f"{project}/merge_requests/{{iid:\\d+}}", self.gitlab_update)
        app.router.add_post(f"{project}/merge_requests/{{iid:\\d+}}/notes", self.gitlab_note)
        app.router.add_put(f"{project}/merge_requests/{{iid:\\d+}}/merge", self.gitlab_merge)
        app.router.add_get(f"{project}/issues", self.gitlab_issues)
        app.router.add_post(f"{project}/issues/{{iid:\\d+}}/notes", self.gitlab_issue_note)
        self.extras.install(app)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.received.append(
            Received(
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                dict(request.headers),
                body,
            )
        )
        if request.path.startswith("/api/v4/"):
            if request.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
                return web.json_response({"message": "401 Unauthorized"}, status=401)
        elif request.headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
            return web.json_response(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                status=401,
            )
        return await handler(request)

    # --- GitHub --------------------------------------------------------------------------------

    def _github_repo(self, request: web.Request) -> str:
        return f"{request.match_info['owner']}/{request.match_info['name']}"

    def _github_pull(self, request: web.Request) -> dict[str, Any]:
        key = (self._github_repo(request), int(request.match_info["number"]))
        if key not in self.pulls or "iid" in self.pulls[key]:
            raise web.HTTPNotFound(text='{"message": "Not Found"}', content_type="application/json")
        return self.pulls[key]

    async def github_list(self, request: web.Request) -> web.Response:
        repo = self._github_repo(request)
        owner, _, branch = request.query.get("head", "").partition(":")
        state = request.query.get("state", "open")
        found = [
            {k: v for k, v in pull.items() if k != "merged"}  # the list shows "simple" pull requests
            for (r, _), pull in sorted(self.pulls.items())
            if r == repo and "number" in pull and pull["head"]["ref"] == branch and pull["state"] == state
            and owner == repo.split("/")[0]
        ]  # fmt: skip
        return web.json_response(found)

    async def github_create(self, request: web.Request) -> web.Response:
        repo, data = self._github_repo(request), await request.json()
        owner = repo.split("/")[0]
        taken = [p for (r, _), p in self.pulls.items() if r == repo and "number" in p]
        if any(p["head"]["ref"] == data["head"] and p["state"] == "open" for p in taken):
            problem = f"A pull request already exists for {owner}:{data['head']}."
            return web.json_response(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "code": "custom", "message": problem}],
                },
                status=422,
            )
        number = next(self._numbers)
        pull = {
            "url": f"{self.url}/repos/{repo}/pulls/{number}",
            "id": 1000 + number,
            "number": number,
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "state": "open",
            "title": data["title"],
            "body": data.get("body"),
            "draft": False,
            "merged": False,
            "merged_at": None,
            "head": {
                "label": f"{owner}:{data['head']}",
                "ref": data["head"],
                "sha": self.head_sha(data["head"]),
                "repo": {"full_name": repo},
            },
            "base": {"label": f"{owner}:{data['base']}", "ref": data["base"], "repo": {"full_name": repo}},
        }
        self.pulls[(repo, number)] = pull
        return web.json_response(pull, status=201)

    async def github_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._github_pull(request))

    async def github_update(self, request: web.Request) -> web.Response:
        pull, data = self._github_pull(request), await request.json()
        pull.update({k: data[k] for k in ("title", "body") if k in data})
        pull["head"]["sha"] = self.head_sha(pull["head"]["ref"])
        return web.json_response(pull)

    async def github_issues(self, request: web.Request) -> web.Response:
        """GET /repos/{owner}/{repo}/issues?labels=a,b&state=open&per_page&page (PRs are listed too)."""
        repo, wanted = self._github_repo(request), request.query.get("labels", "")
        state = request.query.get("state", "open")
        found = [
            issue for (r, _), issue in sorted(self.issues.items())
            if r == repo and "number" in issue and state in ("all", issue["state"])
            and all(w in {label["name"] for label in issue["labels"]} for w in wanted.split(",") if w)
        ]  # fmt: skip
        return web.json_response(_page(request, found))

    async def github_comment(self, request: web.Request) -> web.Response:
        key = (self._github_repo(request), int(request.match_info["number"]))
        if key in self.issues and "number" in self.issues[key]:
            data = await request.json()
            self.issue_comments.setdefault(key, []).append(data["body"])
            comment_id = len(self.issue_comments[key])
            html = f"{self.issues[key]['html_url']}#issuecomment-{comment_id}"
            return web.json_response({"id": comment_id, "html_url": html, "body": data["body"]}, status=201)
        pull, data = self._github_pull(request), await request.json()
        key = (self._github_repo(request), pull["number"])
        self.comments.setdefault(key, []).append(data["body"])
        comment_id = len(self.comments[key])
        return web.json_response(
            {
                "id": comment_id,
                "html_url": f"{pull['html_url']}#issuecomment-{comment_id}",
                "body": data["body"],
            },
            status=201,
        )

    async def github_merge(self, request: web.Request) -> web.Response:
        pull = self._github_pull(request)
        data = await request.json() if request.body_exists else {}
        key = (self._github_repo(request), pull["number"])
        docs = {"documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"}
        if pull["state"] != "open" or key in self.conflicts:
            return web.json_response({"message": "Pull Request is not mergeable", **docs}, status=405)
        if self.required_checks:
            needed = f'Required status check "{self.required_checks[0]}" is expected.'
            return web.json_response({"message": needed, **docs}, status=405)
        if data.get("sha") and data["sha"] != pull["head"]["sha"]:
            moved = "Head branch was modified. Review and try the merge again."
            return web.json_response({"message": moved, **docs}, status=409)
        self.merge(*key)
        return web.json_response(
            {"sha": "9" * 40, "merged": True, "message": "Pull Request successfully merged"}
        )

    # --- GitLab --------------------------------------------------------------------------------

    def _gitlab_repo(self, request: web.Request) -> str:
        return unquote(request.raw_path.split("/")[4])  # /api/v4/projects/<id>/…

    def _gitlab_mr(self, request: web.Request) -> dict[str, Any]:
        key = (self._gitlab_repo(request), int(request.match_info["iid"]))
        if key not in self.pulls or "iid" not in self.pulls[key]:
            raise web.HTTPNotFound(text='{"message": "404 Not found"}', content_type="application/json")
        return self.pulls[key]

    async def gitlab_list(self, request: web.Request) -> web.Response:
        repo = self._gitlab_repo(request)
        branch, state = request.query.get("source_branch"), request.query.get("state", "all")
        found = [
            mr for (r, _), mr in sorted(self.pulls.items())
            if r == repo and "iid" in mr and mr["source_branch"] == branch and state in ("all", mr["state"])
        ]  # fmt: skip
        return web.json_response(found)

    async def gitlab_create(self, request: web.Request) -> web.Response:
        repo, data = self._gitlab_repo(request), await request.json()
        for (r, _), mr in self.pulls.items():
            if r == repo and mr.get("source_branch") == data["source_branch"] and mr["state"] == "opened":
                return web.json_response(
                    {
                        "message": [
                            f"Another open merge request already exists for this source branch: !{mr['iid']}"
                        ]
                    },
                    status=409,
                )
        iid = next(self._numbers)
        mr = {
            "id": 5000 + iid,
            "iid": iid,
            "project_id": 42,
            "title": data["title"],
            "description": data.get("description"),
            "state": "opened",
            "source_branch": data["source_branch"],
            "target_branch": data["target_branch"],
            "web_url": f"https://gitlab.example.test/{repo}/-/merge_requests/{iid}",
            "sha": self.head_sha(data["source_branch"]),
            "merge_status": "can_be_merged",
        }
        self.pulls[(repo, iid)] = mr
        return web.json_response(mr, status=201)

    async def gitlab_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._gitlab_mr(request))

    async def gitlab_update(self, request: web.Request) -> web.Response:
        mr, data = self._gitlab_mr(request), await request.json()
        mr.update({k: data[k] for k in ("title", "description") if k in data})
        mr["sha"] = self.head_sha(mr["source_branch"])
        return web.json_response(mr)

    async def gitlab_note(self, request: web.Request) -> web.Response:
        mr, data = self._gitlab_mr(request), await request.json()
        key = (self._gitlab_repo(request), mr["iid"])
        self.comments.setdefault(key, []).append(data["body"])
        return web.json_response(
            {"id": len(self.comments[key]), "body": data["body"], "noteable_iid": mr["iid"]}, status=201
        )

    async def gitlab_issues(self, request: web.Request) -> web.Response:
        """GET /projects/:id/issues?labels=a,b&state=opened&per_page&page."""
        repo, wanted = self._gitlab_repo(request), request.query.get("labels", "")
        state = request.query.get("state", "all")
        found = [
            issue for (r, _), issue in sorted(self.issues.items())
            if r == repo and "iid" in issue and state in ("all", issue["state"])
            and all(w in issue["labels"] for w in wanted.split(",") if w)
        ]  # fmt: skip
        return web.json_response(_page(request, found))

    async def gitlab_issue_note(self, request: web.Request) -> web.Response:
        key = (self._gitlab_repo(request), int(request.match_info["iid"]))
        if key not in self.issues or "iid" not in self.issues[key]:
            raise web.HTTPNotFound(text='{"message": "404 Issue Not Found"}', content_type="application/json")
        data = await request.json()
        self.issue_comments.setdefault(key, []).append(data["body"])
        body = {"id": len(self.issue_comments[key]), "body": data["body"], "noteable_type": "Issue"}
        return web.json_response(body, status=201)

    async def gitlab_merge(self, request: web.Request) -> web.Response:
        mr = self._gitlab_mr(request)
        data = await request.json() if request.body_exists else {}
        key = (self._gitlab_repo(request), mr["iid"])
        if mr["state"] != "opened" or self.required_checks:
            return web.json_response({"message": "405 Method Not Allowed"}, status=405)
        if key in self.conflicts:
            return web.json_response({"message": "Branch cannot be merged"}, status=406)
        if data.get("sha") and data["sha"] != mr["sha"]:
            moved = f"SHA does not match HEAD of source branch: {mr['sha']}"
            return web.json_response({"message": moved}, status=409)
        self.merge(*key)
        return web.json_response(mr)


def _page(request: web.Request, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    size, page = int(request.query.get("per_page", "30")), int(request.query.get("page", "1"))
    return found[(page - 1) * size : page * size]


@contextlib.asynccontextmanager
async def running_fake_forge(head_sha: Callable[[str], str | None] | None = None) -> AsyncIterator[FakeForge]:
    """The fake forge listening on 127.0.0.1; `forge.url` is its base URL (GitLab's is `+ /api/v4`)."""
    forge = FakeForge(head_sha=head_sha or (lambda branch: None))
    server = TestServer(forge.app(), host="127.0.0.1")
    await server.start_server()
    forge.url = str(server.make_url("")).rstrip("/")
    try:
        async with forge.extras.storage():
            yield forge
    finally:
        await server.close()
