"""A project registered with `https://user:password@host/x.git`: the service clones, lists and pushes
with the credential, and the password appears nowhere it could be read later: not in the database
(any table), events, API answers (idempotent replays included), console pages, the clone's files
or the logs. The remote is git's own http-backend behind TLS and Basic auth."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.domain.redaction import REDACTED
from app.services import agents, workspace
from app.store import projects as project_store
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import csrf_of, sign_in
from tests.support.dbdump import all_text
from tests.support.git_https import GitHttpsServer, serve_seeded_repository
from tests.support.workflow import git, wait_for, workflow_settings

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "s3cr3tpass"


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[GitHttpsServer]:
    yield from serve_seeded_repository(tmp_path, username="user", password=PASSWORD)


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path, remote):
    settings = workflow_settings(
        tmp_path, api_token=TOKEN, git_allow_local_remotes=False, git_allow_private_remotes=True
    )
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SSL_CERT_FILE": str(remote.cert)}
    return await aiohttp_client(create_app(settings, database_url, environ=environ))


async def test_the_credential_is_used_and_never_kept_in_clear(
    client, remote: GitHttpsServer, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    url = remote.url("x.git", with_credentials=True)
    seen: list[str] = []  # every answer and page, to search for the password at the end

    async def read(path: str, **kwargs) -> str:
        response = await client.get(path, **kwargs)
        text = await response.text()
        assert response.status == 200, text
        seen.append(text)
        return text

    headers = {**AUTH, "Idempotency-Key": "register-shop"}
    created = await client.post("/projects", json={"name": "shop", "git_url": url}, headers=headers)
    seen.append(await created.text())
    assert created.status == 201, seen[-1]
    project = await created.json()
    assert project["git_url"] == remote.url("x.git")
    replayed = await client.post("/projects", json={"name": "shop", "git_url": url}, headers=headers)
    seen.append(await replayed.text())
    assert (await replayed.json())["id"] == project["id"]
    refused = await client.post(
        "/projects", json={"name": "Bad Name", "git_url": url.replace("https", "http")}, headers=AUTH
    )
    seen.append(await refused.text())
    assert refused.status == 422

    async def ready() -> bool:
        got = await client.get(f"/projects/{project['id']}", headers=AUTH)
        return (await got.json())["status"] == "ready"

    await wait_for(ready, what="the project's clone over https")
    assert "main" in await read(f"/projects/{project['id']}/branches", headers=AUTH)

    # A push the way a step pushes: the service's repository for the project, credential from storage.
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        stored = await project_store.get(conn, project["id"])
    clone = workspace.existing_repository(svc, stored)
    worktree = await clone.worktree_add(tmp_path / "wt", "0001-x", "main")
    (worktree.path / "f.txt").write_text("x\n")
    await worktree.commit_all("feat: f [protocol-0001/01]")
    await worktree.push("0001-x")
    assert git("--git-dir", str(remote.root / "x.git"), "branch", "--list", "0001-x") != ""
    assert remote.authorized_requests() >= 3  # clone, listing, push

    await read("/projects", headers=AUTH)
    await read(f"/projects/{project['id']}", headers=AUTH)
    await read("/events", headers=AUTH)
    await read(f"/projects/{project['id']}/events", headers=AUTH)
    await sign_in(client, TOKEN)
    for page in ("/console/", "/console/projects/live", f"/console/projects/{project['id']}",
                 f"/console/projects/{project['id']}/live", "/console/activity"):  # fmt: skip
        await read(page)
    csrf = await csrf_of(client, "/console/projects/new")
    form = await client.post(
        "/console/projects", data={"name": "Bad Name", "git_url": url, "csrf_token": csrf}
    )
    seen.append(await form.text())
    assert form.status == 422

    for text in seen:
        assert PASSWORD not in text
    assert PASSWORD not in all_text(database_url)
    files = [path for path in (tmp_path / "data").rglob("*") if path.is_file()]
    assert [path for path in files if PASSWORD.encode() in path.read_bytes()] == []
    assert PASSWORD not in (tmp_path / "wt" / ".git").read_text()
    assert PASSWORD not in caplog.text


async def test_agent_output_holding_the_project_credential_is_redacted(client, remote: GitHttpsServer):
    """Agents never get the credential, but a repository (or a guess) may hold it: it is redacted like
    a setting's secret from what an agent of that project returns."""
    created = await client.post(
        "/projects",
        json={"name": "shop", "git_url": remote.url("x.git", with_credentials=True)},
        headers=AUTH,
    )
    project = await created.json()
    svc = client.app[SERVICES]
    redact = await agents.redactor_for(svc, agents.Subject(project_id=project["id"]))
    assert redact(f"found {PASSWORD} in the repo") == f"found {REDACTED} in the repo"
    assert "the project's git credential" in redact.names
