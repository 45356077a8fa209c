"""Input that must be refused at the API and in the console: branch names git would misread or that
hide characters, titles, names and notes carrying invisible format characters, remotes on link-local,
metadata or private addresses, and local paths outside TASKSGODZILLA_LOCAL_PATH_ROOTS.
Every refusal is a 422 naming the field (an HTML page saying why in the console), never a 500."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.records import ProjectStatus
from app.services import planning
from app.store import projects as project_store
from app.store import steps as step_store
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import csrf_of, sign_in
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BRANCHES = ["main\u202egnp", "main:refs/heads/evil", "main^", "main.lock", "ma\\in", "a..b", "-x", "@",
            "HEAD", "a/.b", "a//b", "a/", "main\u200b", "m\u0430in", "a@{1}", "a~1", "a?", "a*", "a[b",
            "a b"]  # fmt: skip
HIDDEN = ["\u202e", "\u2066", "\u200b", "\u200f", "\ufeff", "\u00ad", "\u2028"]
URLS = [
    "https://169.254.169.254/latest.git",
    "https://[fe80::1]/r.git",
    "https://[fd00:ec2::254]/r.git",
    "https://[::ffff:169.254.169.254]/r.git",
    "https://2852039166/r.git",
    "https://0x7f.1/r.git",
    "https://127.0.0.1/r.git",
    "https://localhost/r.git",
    "ssh://git@10.0.0.1/r.git",
    "git@192.168.0.1:r.git",
    "https://metadata.google.internal/r.git",
    "https://git\u202ehub.com/r.git",
]


@pytest.fixture
def roots(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return allowed


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path, roots):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        local_path_roots=[roots],
        git_allow_local_remotes=True,  # the repositories' origins are local folders
    )
    return await aiohttp_client(create_app(settings, database_url))


async def _refused(response, field: str) -> None:
    assert response.status == 422, (field, await response.text())
    assert (await response.json())["error"]["details"]["field"] == field


async def _ready_project(client, name="demo"):
    made = await client.post(
        "/projects", json={"name": name, "git_url": "https://github.com/acme/shop.git"}, headers=AUTH
    )
    assert made.status == 201, await made.text()
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        current = await project_store.get(conn, (await made.json())["id"])
        return await project_store.set_status(
            conn, current.id, ProjectStatus.READY, expected_version=current.version
        )


async def test_branch_names_are_refused_on_every_field_that_takes_one(client):
    project = await _ready_project(client)
    for branch in BRANCHES:
        body = {"name": "x", "git_url": "https://github.com/acme/x.git", "base_branch": branch}
        await _refused(await client.post("/projects", json=body, headers=AUTH), "base_branch")
        patch = await client.patch(f"/projects/{project.id}", json={"base_branch": branch}, headers=AUTH)
        await _refused(patch, "base_branch")
        answer = {"answers": {"base_branch": branch}}
        await _refused(
            await client.post(f"/projects/{project.id}/clarifications", json=answer, headers=AUTH),
            "base_branch",
        )
    listed = await (await client.get("/projects", headers=AUTH)).json()
    assert [(p["name"], p["base_branch"]) for p in listed["items"]] == [("demo", "main")]


async def test_titles_names_and_notes_with_hidden_characters_are_refused(client):
    project = await _ready_project(client)
    svc = client.app[SERVICES]
    run = await planning.create_protocol(svc, project.id, title="Fine")
    async with svc.database.transaction() as conn:
        [step] = await step_store.create_many(
            conn, run.id, [{"step_index": 1, "name": "s", "step_file": "01-s.md"}]
        )
    for char in HIDDEN:
        for body, field in [
            ({"title": f"Add{char} login"}, "title"),
            ({"title": "Add login", "description": f"line one\nline{char} two"}, "description"),
            ({"title": "Add login", "execution_model": f"gpt{char}-5"}, "execution_model"),
        ]:
            await _refused(
                await client.post(f"/projects/{project.id}/protocols", json=body, headers=AUTH), field
            )
        for action in ("retry", "approve"):
            response = await client.post(
                f"/steps/{step.id}/actions/{action}", json={"note": f"n{char}o"}, headers=AUTH
            )
            await _refused(response, "note")
        await _refused(
            await client.post(
                "/projects", json={"name": f"x{char}y", "git_url": "https://e.com/r.git"}, headers=AUTH
            ),
            "name",
        )
    runs = await (await client.get(f"/projects/{project.id}/protocols", headers=AUTH)).json()
    assert [r["title"] for r in runs["items"]] == ["Fine"]


async def test_multi_line_texts_keep_their_lines(client):
    project = await _ready_project(client)
    body = {"title": "Café für Größe 🚀", "description": "one\r\ntwo\n\tthree"}
    made = await client.post(f"/projects/{project.id}/protocols", json=body, headers=AUTH)
    assert made.status == 201, await made.text()


async def test_remotes_on_forbidden_addresses_are_refused_at_registration(client):
    for url in URLS:
        response = await client.post("/projects", json={"name": "x", "git_url": url}, headers=AUTH)
        await _refused(response, "git_url")


async def test_local_paths_outside_the_roots_are_refused(client, roots, tmp_path):
    repos = make_repos(roots)
    (roots / "proc").symlink_to("/proc/self")
    hostile = ["/proc/self", "/etc", "/", str(roots / "proc"), f"{roots}/../allowed/local",
               f"{roots}/local/..", str(tmp_path / "data"), str(tmp_path),
               f"{repos.local}\u202e"]  # fmt: skip
    for path in hostile:
        response = await client.post("/projects", json={"name": "x", "local_path": path}, headers=AUTH)
        await _refused(response, "local_path")
    ok = await client.post("/projects", json={"name": "ok", "local_path": str(repos.local)}, headers=AUTH)
    assert ok.status == 201, await ok.text()


async def test_with_no_roots_no_project_is_registered_by_path(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", local_path_roots=[])
    client = await aiohttp_client(create_app(settings, database_url))
    repos = make_repos(tmp_path)
    response = await client.post(
        "/projects", json={"name": "x", "local_path": str(repos.local)}, headers=AUTH
    )
    await _refused(response, "local_path")
    assert "TASKSGODZILLA_LOCAL_PATH_ROOTS" in (await response.json())["error"]["message"]


async def test_the_console_forms_refuse_the_same_input(client):
    await sign_in(client, TOKEN)
    project = await _ready_project(client)
    csrf = await csrf_of(client, "/console/projects/new")
    for data in [
        {"name": "x", "git_url": "https://github.com/acme/x.git", "base_branch": "main\u202egnp"},
        {"name": "x", "git_url": "https://169.254.169.254/x.git"},
        {"name": "x", "local_path": "/proc/self"},
    ]:
        page = await client.post("/console/projects", data={"csrf_token": csrf, **data})
        assert page.status == 422, data
        assert '<div class="notice error" role="alert">' in await page.text()
    settings = await client.post(
        f"/console/projects/{project.id}/settings", data={"csrf_token": csrf, "base_branch": "main^"}
    )
    assert settings.status == 422
    protocol = await client.post(
        f"/console/projects/{project.id}/protocols", data={"csrf_token": csrf, "title": "a\u202eb"}
    )
    assert protocol.status == 422
    assert "U+202E" in await protocol.text()
    run = await planning.create_protocol(client.app[SERVICES], project.id, title="Fine")
    async with client.app[SERVICES].database.transaction() as conn:
        [step] = await step_store.create_many(
            conn, run.id, [{"step_index": 1, "name": "s", "step_file": "01-s.md"}]
        )
    for action in ("retry", "approve"):
        noted = await client.post(
            f"/console/steps/{step.id}/actions/{action}", data={"csrf_token": csrf, "note": "a\u2066b"}
        )
        assert noted.status == 422, action
        assert "U+2066" in await noted.text()
    listed = await (await client.get("/projects", headers=AUTH)).json()
    assert [p["name"] for p in listed["items"]] == ["demo"]
