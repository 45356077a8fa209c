"""The console over plain HTTP (no JavaScript): sessions, CSRF, scope, escaping, errors, reading."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.records import AgentRunStatus, ProjectStatus
from app.domain.statuses import ProtocolStatus
from app.services import planning
from app.store import agent_runs, protocols, steps
from app.store import projects as project_store
from app.store.transitions import move_protocol
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import csrf_of, sign_in
from tests.support import seed
from tests.support.workflow import commit_protocol_files, make_repos

TOKEN = "console-token-0123456789"


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


@pytest.fixture
async def open_client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def _project(client, name="demo", status=ProjectStatus.READY):
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name=name, local_path="/srv/repos/" + name)
        return await project_store.set_status(conn, project.id, status, expected_version=project.version)


async def _running_run(client, project_id, title="Tidy up", steps_count=1):
    svc = client.app[SERVICES]
    run = await planning.create_protocol(svc, project_id, title=title)
    async with svc.database.transaction() as conn:
        for target in (ProtocolStatus.PLANNING, ProtocolStatus.PLANNED, ProtocolStatus.RUNNING):
            run = await move_protocol(conn, run.id, target, expected_version=run.version)
        made = await steps.create_many(
            conn,
            run.id,
            [
                {"step_index": i, "name": f"part {i}", "step_file": f"0{i}-p.md"}
                for i in range(1, steps_count + 1)
            ],
        )
    return run, made


async def test_root_leads_to_the_console_and_pages_need_a_session(client):
    home = await client.get("/", allow_redirects=False)
    assert (home.status, home.headers["Location"]) == (302, "/console/")
    page = await client.get("/console/", allow_redirects=False)
    assert (page.status, page.headers["Location"]) == (303, "/console/login")
    api = await client.get("/projects")
    assert api.status == 401, "the JSON API still wants its bearer token"
    assert (await api.json())["error"]["code"] == "unauthenticated"


async def test_sign_in_sets_a_signed_http_only_strict_cookie_and_sign_out_clears_it(client):
    csrf = await csrf_of(client)
    wrong = await client.post("/console/login", data={"token": "nope", "csrf_token": csrf})
    assert wrong.status == 401
    assert "not valid" in await wrong.text()
    right = await client.post(
        "/console/login", data={"token": TOKEN, "csrf_token": csrf}, allow_redirects=False
    )
    assert right.status == 303
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    assert (await client.get("/console/")).status == 200
    csrf = await csrf_of(client, "/console/")
    out = await client.post("/console/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.headers["Location"] == "/console/login"
    client.session.cookie_jar.clear()
    again = await client.get("/console/", allow_redirects=False)
    assert again.status == 303


async def test_a_forged_or_foreign_cookie_is_no_session(client, database_url, aiohttp_client, tmp_path):
    await sign_in(client, TOKEN)
    other = await aiohttp_client(
        create_app(Settings(run_worker=False, api_token="another-token-abcdef"), database_url)
    )
    cookie = next(c for c in client.session.cookie_jar if c.key == "tg_console").value
    response = await other.get("/console/", cookies={"tg_console": cookie}, allow_redirects=False)
    assert response.status == 303, "a cookie signed under another API token must not sign in"
    tampered = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    client.session.cookie_jar.clear()
    response = await client.get("/console/", cookies={"tg_console": tampered}, allow_redirects=False)
    assert response.status == 303


async def test_every_post_needs_the_csrf_token_and_our_origin(client):
    await sign_in(client, TOKEN)
    project = await _project(client)
    url = f"/console/projects/{project.id}/settings"
    missing = await client.post(url, data={"ci_provider": "github"})
    assert missing.status == 403
    assert "security token" in await missing.text()
    csrf = await csrf_of(client, f"/console/projects/{project.id}")
    foreign = await client.post(
        url, data={"ci_provider": "github", "csrf_token": csrf}, headers={"Origin": "https://evil.test"}
    )
    assert foreign.status == 403
    good = await client.post(url, data={"ci_provider": "github", "csrf_token": csrf}, allow_redirects=False)
    assert good.status == 303
    by_header = await client.post(
        url, data={"ci_provider": "gitlab"}, headers={"X-CSRF-Token": csrf, "HX-Request": "true"}
    )
    assert by_header.status == 200
    assert by_header.headers["HX-Trigger"] == "refresh"
    async with client.app[SERVICES].database.read() as conn:
        assert (await project_store.get(conn, project.id)).ci_provider == "gitlab"


async def test_a_project_token_session_sees_its_project_only(client):
    mine, theirs = await _project(client, "mine"), await _project(client, "theirs")
    issued = await client.post(f"/projects/{mine.id}/token", headers={"Authorization": f"Bearer {TOKEN}"})
    project_token = (await issued.json())["token"]
    await sign_in(client, project_token)
    home = await client.get("/console/", allow_redirects=False)
    assert home.headers["Location"] == f"/console/projects/{mine.id}"
    assert (await client.get(f"/console/projects/{mine.id}")).status == 200
    forbidden = await client.get(f"/console/projects/{theirs.id}")
    assert forbidden.status == 403
    assert "another project" in await forbidden.text()
    run, _ = await _running_run(client, theirs.id)
    assert (await client.get(f"/console/protocols/{run.id}")).status == 403
    assert (await client.get("/console/projects/new")).status == 403
    assert (await client.get(f"/console/stream?protocol_id={run.id}")).status == 403
    # Rotating the project's token ends the session.
    await client.post(f"/projects/{mine.id}/token", headers={"Authorization": f"Bearer {TOKEN}"})
    after = await client.get(f"/console/projects/{mine.id}", allow_redirects=False)
    assert after.status == 303


async def test_an_open_console_says_so_and_asks_for_no_login(open_client):
    page = await open_client.get("/console/")
    assert page.status == 200
    assert "open: no token configured" in await page.text()
    assert (await open_client.get("/console/login", allow_redirects=False)).status == 303
    assert (await open_client.post("/console/projects", data={"name": "x"})).status == 403, "CSRF still"


async def test_the_project_page_reads_without_javascript_with_search_filters_and_paging(client):
    await sign_in(client, TOKEN)
    project = await _project(client)
    svc = client.app[SERVICES]
    for i in range(55):
        await planning.create_protocol(svc, project.id, title=f"Task {i} {'alpha' if i % 2 else 'beta'}")
    page = await client.get(f"/console/projects/{project.id}")
    html = await page.text()
    assert page.status == 200
    assert html.count("data-run-id=") == 50
    assert "Task 54 beta" in html
    assert "Older runs" in html
    searched = await (await client.get(f"/console/projects/{project.id}?q=alpha")).text()
    assert searched.count("data-run-id=") == 27
    assert "beta" not in searched.split('id="runs"')[1]
    api = await client.get(
        f"/projects/{project.id}/protocols?q=alpha&limit=100", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert len((await api.json())["items"]) == 27, "the JSON API answers the same search"
    none = await (await client.get(f"/console/projects/{project.id}?status=completed")).text()
    assert "No protocol runs match" in none


async def test_agent_logs_and_names_are_shown_as_text(client):
    await sign_in(client, TOKEN)
    project = await _project(client)
    run, (step,) = await _running_run(client, project.id, title="<script>alert('title')</script>")
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        agent = await seed.agent_run(
            conn,
            run,
            step,
            prompt_version="execute-v1",
            status=AgentRunStatus.SUCCEEDED,
            input_tokens=1200,
            output_tokens=30,
        )
        await agent_runs.store_log(
            conn,
            agent.id,
            "\x1b[31mred alert\x1b[0m <script>alert(1)</script> <img src=x onerror=alert(2)>",
            truncated=False,
        )
    html = await (await client.get(f"/console/steps/{step.id}")).text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "\x1b" not in html
    assert "red alert" in html
    assert "1,200" in html
    protocol = await (await client.get(f"/console/protocols/{run.id}")).text()
    assert "<script>alert('title')" not in protocol
    assert "1,230" in protocol, "the timeline shows the step's tokens"


async def test_a_refused_action_is_an_error_fragment_for_htmx_and_a_page_otherwise(client):
    await sign_in(client, TOKEN)
    project = await _project(client)
    run = await planning.create_protocol(client.app[SERVICES], project.id, title="Not started")
    csrf = await csrf_of(client, f"/console/protocols/{run.id}")
    url = f"/console/protocols/{run.id}/actions/run_next_step"
    fragment = await client.post(url, data={"csrf_token": csrf}, headers={"HX-Request": "true"})
    assert fragment.status == 409
    body = await fragment.text()
    assert body.startswith('<div class="notice error" role="alert">')
    assert "the run is pending, not running" in body
    page = await client.post(url, data={"csrf_token": csrf})
    assert page.status == 409
    assert "<h1>Error 409</h1>" in await page.text()
    stale = await client.post(
        f"/console/protocols/{run.id}/actions/cancel",
        data={"csrf_token": csrf, "version": str(run.version + 5)},
        headers={"HX-Request": "true"},
    )
    assert stale.status == 409, "the version the page showed is a compare-and-set"
    unknown = await client.post(f"/console/protocols/{run.id}/actions/explode", data={"csrf_token": csrf})
    assert unknown.status == 404


async def test_onboarding_form_registers_a_project_or_says_why_not(client, tmp_path):
    await sign_in(client, TOKEN)
    repos = make_repos(tmp_path)
    csrf = await csrf_of(client, "/console/projects/new")
    bad = await client.post("/console/projects", data={"csrf_token": csrf, "name": "Bad Name!"})
    assert bad.status == 422
    text = await bad.text()
    assert "Bad Name!" in text, "the form comes back filled in"
    made = await client.post(
        "/console/projects",
        data={
            "csrf_token": csrf,
            "name": "shop",
            "local_path": str(repos.local),
            "base_branch": "main",
            "ci_provider": "github",
            "execution_engine": "command",
            "qa_model": "gpt-5.1-codex-mini",
        },
        allow_redirects=False,
    )
    assert made.status == 303, await made.text()
    project_id = int(made.headers["Location"].rsplit("/", 1)[1])
    async with client.app[SERVICES].database.read() as conn:
        project = await project_store.get(conn, project_id)
    assert (project.ci_provider, project.execution_engine, project.qa_model) == (
        "github",
        "command",
        "gpt-5.1-codex-mini",
    )


async def test_plan_md_is_rendered_with_its_html_inert(client, tmp_path):
    await sign_in(client, TOKEN)
    repos = make_repos(tmp_path)
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="demo", local_path=str(repos.local))
        project = await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    run, _ = await _running_run(client, project.id)
    plan_md = (
        "# The plan\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(2)) [good](https://ok.test/x)\n"
    )
    head = commit_protocol_files(repos.local, run.name, {"plan.md": plan_md})
    async with svc.database.transaction() as conn:
        await protocols.update_fields(conn, run.id, expected_version=run.version, head_sha=head)
    html = await (await client.get(f"/console/protocols/{run.id}")).text()
    assert "<h1>The plan</h1>" in html
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert '<a href="https://ok.test/x">good</a>' in html


async def test_a_double_click_queues_one_job_and_the_second_is_a_409(client):
    await sign_in(client, TOKEN)
    project = await _project(client)
    run, _ = await _running_run(client, project.id)
    csrf = await csrf_of(client, f"/console/protocols/{run.id}")
    url = f"/console/protocols/{run.id}/actions/run_next_step"
    first = await client.post(url, data={"csrf_token": csrf}, headers={"HX-Request": "true"})
    second = await client.post(url, data={"csrf_token": csrf}, headers={"HX-Request": "true"})
    assert first.status == 200
    assert "Run next step: done" in await first.text()
    assert second.status == 409
    assert "queued already" in await second.text()
