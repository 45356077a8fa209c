"""The fake forge's review-reply, members and CI-jobs endpoints (tests/support/fake_forge.py mounts
them), speaking GitHub's and GitLab's documented paths and payloads:

GitHub: `POST /repos/{o}/{r}/pulls/{n}/comments/{id}/replies` (201, the new review comment with
`in_reply_to_id`); `GET /repos/{o}/{r}/actions/runs?head_sha=` (`{"total_count", "workflow_runs"}`);
`GET …/actions/runs/{id}/jobs` (`{"total_count", "jobs"}`); `GET …/actions/jobs/{id}/logs`, a 302 to
the log on a separate storage host (which records whether an Authorization header reached it).
GitLab: `POST /projects/{id}/merge_requests/{iid}/discussions/{discussion_id}/notes` (201, the note);
`GET /projects/{id}/members/all/{user_id}` (the member with `access_level`, or 404);
`GET /projects/{id}/pipelines?sha=&status=`; `GET …/pipelines/{id}/jobs?scope[]=failed`;
`GET /projects/{id}/jobs/{id}/trace` (the log as text/plain).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class CiJob:
    name: str
    log: str
    conclusion: str = "failure"  # GitHub's word; GitLab's job status is then "failed"
    id: int = 0


@dataclass
class ForgeExtras:
    # sha → the jobs CI ran on it (one workflow run / pipeline each sha)
    ci_jobs: dict[str, list[CiJob]] = field(default_factory=dict)
    members: dict[int, int] = field(default_factory=dict)  # GitLab user id → access level
    replies: list[dict[str, Any]] = field(default_factory=list)
    log_requests: list[dict[str, str]] = field(default_factory=list)  # headers the storage host saw
    blob_url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(7001))

    def add_ci_jobs(self, sha: str, *jobs: CiJob) -> None:
        for job in jobs:
            job.id = next(self._ids)
        self.ci_jobs.setdefault(sha, []).extend(jobs)

    def _job(self, job_id: int) -> CiJob:
        for job in (j for jobs in self.ci_jobs.values() for j in jobs):
            if job.id == job_id:
                return job
        raise web.HTTPNotFound(text='{"message": "Not Found"}', content_type="application/json")

    def install(self, app: web.Application) -> None:
        repo = "/repos/{owner}/{name}"
        app.router.add_post(
            f"{repo}/pulls/{{number:\\d+}}/comments/{{comment:\\d+}}/replies", self.github_reply
        )
        app.router.add_get(f"{repo}/actions/runs", self.github_runs)
        app.router.add_get(f"{repo}/actions/runs/{{run:\\d+}}/jobs", self.github_jobs)
        app.router.add_get(f"{repo}/actions/jobs/{{job:\\d+}}/logs", self.github_log)
        project = "/api/v4/projects/{project}"
        discussion = f"{project}/merge_requests/{{iid:\\d+}}/discussions/{{discussion:[0-9a-f]+}}/notes"
        app.router.add_post(discussion, self.gitlab_discussion_note)
        app.router.add_get(f"{project}/members/all/{{user:\\d+}}", self.gitlab_member)
        app.router.add_get(f"{project}/pipelines", self.gitlab_pipelines)
        app.router.add_get(f"{project}/pipelines/{{pipeline:\\d+}}/jobs", self.gitlab_jobs)
        app.router.add_get(f"{project}/jobs/{{job:\\d+}}/trace", self.gitlab_trace)

    # --- GitHub --------------------------------------------------------------------------------

    async def github_reply(self, request: web.Request) -> web.Response:
        data = await request.json()
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        reply = {
            "provider": "github",
            "repo": repo,
            "number": int(request.match_info["number"]),
            "in_reply_to_id": int(request.match_info["comment"]),
            "body": data["body"],
        }
        self.replies.append(reply)
        return web.json_response({"id": 90000 + len(self.replies), **reply}, status=201)

    def _github_run_id(self, sha: str) -> int:
        return 100 + sorted(self.ci_jobs).index(sha)

    async def github_runs(self, request: web.Request) -> web.Response:
        sha = request.query.get("head_sha", "")
        jobs = self.ci_jobs.get(sha, [])
        runs = []
        if jobs:
            failed = any(j.conclusion != "success" for j in jobs)
            runs.append(
                {
                    "id": self._github_run_id(sha),
                    "name": "CI",
                    "head_sha": sha,
                    "status": "completed",
                    "conclusion": "failure" if failed else "success",
                    "html_url": f"https://github.com/x/y/actions/runs/{self._github_run_id(sha)}",
                }
            )
        return web.json_response({"total_count": len(runs), "workflow_runs": runs})

    async def github_jobs(self, request: web.Request) -> web.Response:
        run_id = int(request.match_info["run"])
        sha = next((s for s in self.ci_jobs if self._github_run_id(s) == run_id), None)
        jobs = [
            {
                "id": j.id,
                "run_id": run_id,
                "name": j.name,
                "status": "completed",
                "conclusion": j.conclusion,
                "html_url": f"https://github.com/x/y/actions/runs/{run_id}/job/{j.id}",
            }
            for j in self.ci_jobs.get(sha or "", [])
        ]
        return web.json_response({"total_count": len(jobs), "jobs": jobs})

    async def github_log(self, request: web.Request) -> web.Response:
        job = self._job(int(request.match_info["job"]))
        raise web.HTTPFound(f"{self.blob_url}/logs/{job.id}?sig=signed-url")

    async def blob_log(self, request: web.Request) -> web.Response:
        self.log_requests.append(dict(request.headers))
        return web.Response(text=self._job(int(request.match_info["job"])).log, content_type="text/plain")

    # --- GitLab --------------------------------------------------------------------------------

    async def gitlab_discussion_note(self, request: web.Request) -> web.Response:
        data = await request.json()
        reply = {
            "provider": "gitlab",
            "repo": unquote(request.raw_path.split("/")[4]),
            "number": int(request.match_info["iid"]),
            "discussion_id": request.match_info["discussion"],
            "body": data["body"],
        }
        self.replies.append(reply)
        return web.json_response({"id": 80000 + len(self.replies), "body": data["body"]}, status=201)

    async def gitlab_member(self, request: web.Request) -> web.Response:
        user = int(request.match_info["user"])
        if user not in self.members:
            return web.json_response({"message": "404 Not found"}, status=404)
        return web.json_response(
            {"id": user, "username": f"user{user}", "state": "active", "access_level": self.members[user]}
        )

    async def gitlab_pipelines(self, request: web.Request) -> web.Response:
        sha, status = request.query.get("sha", ""), request.query.get("status")
        jobs = self.ci_jobs.get(sha, [])
        state = "failed" if any(j.conclusion != "success" for j in jobs) else "success"
        found = [
            {"id": 300 + sorted(self.ci_jobs).index(sha), "sha": sha, "ref": "x", "status": state,
             "web_url": "https://gitlab.example.test/pipelines/1"}
        ] if jobs and status in (None, state) else []  # fmt: skip
        return web.json_response(found)

    async def gitlab_jobs(self, request: web.Request) -> web.Response:
        pipeline = int(request.match_info["pipeline"])
        sha = next((s for s in self.ci_jobs if 300 + sorted(self.ci_jobs).index(s) == pipeline), "")
        scope = request.query.getall("scope[]", [])
        jobs = [
            {"id": j.id, "name": j.name, "stage": "test",
             "status": "failed" if j.conclusion != "success" else "success",
             "web_url": f"https://gitlab.example.test/-/jobs/{j.id}"}
            for j in self.ci_jobs.get(sha, [])
        ]  # fmt: skip
        return web.json_response([j for j in jobs if not scope or j["status"] in scope])

    async def gitlab_trace(self, request: web.Request) -> web.Response:
        return web.Response(text=self._job(int(request.match_info["job"])).log, content_type="text/plain")

    # --- the storage host a GitHub log redirect points to ----------------------------------------

    @contextlib.asynccontextmanager
    async def storage(self) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_get("/logs/{job:\\d+}", self.blob_log)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.blob_url = str(server.make_url("")).rstrip("/")
        try:
            yield
        finally:
            await server.close()
