"""Issue intake tests: a project taking in issues of acme/shop, the fake forge, and issue deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.config import Settings
from app.domain.records import Project, ProtocolRun
from app.store import events, intake, projects
from app.store.rows import fetch_all
from app.store.tables import protocol_runs
from app.web.app import create_app
from tests.support.ci_runs import GITLAB_SECRET, SECRET, github_request, gitlab_request
from tests.support.fake_forge import GITHUB_TOKEN, GITLAB_TOKEN, FakeForge

LABEL = "tasksgodzilla"
REPO = "acme/shop"


async def intake_project(
    database, *, provider: str = "github", label: str | None = LABEL, **fields
) -> Project:
    async with database.transaction() as conn:
        return await projects.create(
            conn, name="shop", local_path="/srv/shop", ci_provider=provider, forge_repo=REPO,
            intake_label=label, **fields,
        )  # fmt: skip


async def intake_client(aiohttp_client, database_url, forge: FakeForge, **extra):
    values = {
        "run_worker": False,
        "github_webhook_secret": SECRET,
        "gitlab_webhook_token": GITLAB_SECRET,
        "github_api_url": forge.url,
        "github_token": GITHUB_TOKEN,
        "gitlab_api_url": f"{forge.url}/api/v4",
        "gitlab_token": GITLAB_TOKEN,
        "api_base": "https://tg.example.test",
    }
    return await aiohttp_client(create_app(Settings(**(values | extra)), database_url))


def github_issue_event(issue: dict[str, Any], action: str = "opened") -> dict[str, Any]:
    """GitHub's `issues` webhook payload (as documented: action, issue, repository, sender)."""
    return {
        "action": action,
        "issue": issue,
        "repository": {"id": 1296269, "full_name": REPO, "name": "shop", "owner": {"login": "acme"}},
        "sender": {"login": "octocat", "type": "User"},
    }


def gitlab_issue_event(issue: dict[str, Any], action: str = "open") -> dict[str, Any]:
    """GitLab's `Issue Hook` payload (object_kind issue: project, object_attributes, labels)."""
    return {
        "object_kind": "issue",
        "event_type": "issue",
        "user": {"username": "root"},
        "project": {"id": 42, "path_with_namespace": REPO, "web_url": f"https://gitlab.example.test/{REPO}"},
        "object_attributes": {
            "id": issue["id"],
            "iid": issue["iid"],
            "title": issue["title"],
            "description": issue["description"],
            "state": issue["state"],
            "url": issue["web_url"],
            "action": action,
        },
        "labels": [
            {"id": i, "title": name, "type": "ProjectLabel"} for i, name in enumerate(issue["labels"])
        ],
    }


async def deliver(client, provider: str, body: dict[str, Any], delivery: str) -> tuple[int, dict]:
    if provider == "github":
        response = await client.post("/webhooks/github", **github_request("issues", body, delivery=delivery))
    else:
        response = await client.post(
            "/webhooks/gitlab", **gitlab_request("Issue Hook", body, delivery=delivery)
        )
    return response.status, await response.json()


async def issue_row(database, project_id: int, number: int):
    async with database.read() as conn:
        return next((r for r in await intake.list_for_project(conn, project_id) if r.number == number), None)


async def runs_of(database, project_id: int) -> list[ProtocolRun]:
    query = select(protocol_runs).where(protocol_runs.c.project_id == project_id).order_by(protocol_runs.c.id)
    async with database.read() as conn:
        return await fetch_all(conn, query, ProtocolRun)


async def kinds(database, project_id: int, prefix: str = "intake.") -> list[str]:
    async with database.read() as conn:
        found = await events.list_page(conn, project_id=project_id, limit=500)
    return [e.event_type for e in found if e.event_type.startswith(prefix)]
