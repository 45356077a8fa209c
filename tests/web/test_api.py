"""The JSON API over real services and a real database (jobs are queued; no worker runs them here)."""

from __future__ import annotations

import asyncio

import pytest

from app.config import Settings
from app.domain.statuses import ProtocolStatus, StepStatus
from app.store import projects as project_store
from app.store import protocols as protocol_store
from app.store import steps as step_store
from app.store.transitions import move_protocol, move_step
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.sse import next_sse
from tests.support.workflow import make_repos, wait_for

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


@pytest.fixture
def repos(tmp_path):
    return make_repos(tmp_path)


async def _ready_project(client, repos, name="demo"):
    response = await client.post(
        "/projects", json={"name": name, "local_path": str(repos.local)}, headers=AUTH
    )
    assert response.status == 201, await response.text()
    project = await response.json()
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        current = await project_store.get(conn, project["id"])
        await project_store.set_status(
            conn, current.id, type(current.status).READY, expected_version=current.version
        )
    return project


async def test_projects_are_created_listed_read_patched_and_deleted(client, repos):
    project = await _ready_project(client, repos)
    assert project["name"] == "demo"
    listed = await (await client.get("/projects", headers=AUTH)).json()
    assert [p["id"] for p in listed["items"]] == [project["id"]]
    assert listed["next_cursor"] is None
    one = await client.get(f"/projects/{project['id']}", headers=AUTH)
    etag = one.headers["ETag"]
    patched = await client.patch(
        f"/projects/{project['id']}", json={"ci_provider": "github"}, headers={**AUTH, "If-Match": etag}
    )
    assert patched.status == 200
    assert (await patched.json())["ci_provider"] == "github"
    stale = await client.patch(
        f"/projects/{project['id']}", json={"ci_provider": "gitlab"}, headers={**AUTH, "If-Match": etag}
    )
    assert stale.status == 409
    assert (await stale.json())["error"]["code"] == "stale_write"
    gone = await client.delete(f"/projects/{project['id']}", headers=AUTH)
    assert gone.status == 204
    assert (await client.get(f"/projects/{project['id']}", headers=AUTH)).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "local_path": "/srv/x", "colour": "red"}, "colour"),
        ({"local_path": "/srv/x"}, "name"),
        ({"name": "../x", "local_path": "/srv/x"}, "name"),
        ({"name": "x", "git_url": "ext::sh -c id"}, "git_url"),
        ({"name": "x", "local_path": "/srv/x", "planning_engine": "gpt"}, "planning_engine"),
        ({"name": "x" * 64, "local_path": "/srv/x"}, "name"),
    ],
)
async def test_bad_project_input_is_a_422_naming_the_field(client, body, field):
    response = await client.post("/projects", json=body, headers=AUTH)
    assert response.status == 422
    assert (await response.json())["error"]["details"]["field"] == field


async def test_malformed_json_and_bad_ids_are_clear_errors(client):
    bad_json = await client.post(
        "/projects", data=b"{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert bad_json.status == 422
    assert (await bad_json.json())["error"]["details"]["field"] == "body"
    assert (await client.get("/projects/abc", headers=AUTH)).status == 404
    assert (await client.get("/projects/99999999999999999999", headers=AUTH)).status == 404
    bad_cursor = await client.get("/projects?cursor=%%%", headers=AUTH)
    assert bad_cursor.status == 422
    bad_limit = await client.get("/projects?limit=0", headers=AUTH)
    assert (await bad_limit.json())["error"]["details"]["field"] == "limit"


async def test_every_endpoint_but_health_and_openapi_needs_the_token(client):
    for path in ("/projects", "/events", "/protocols/1", "/steps/1/events"):
        response = await client.get(path)
        assert response.status == 401, path
        assert (await response.json())["error"]["code"] == "unauthenticated"
    assert (await client.get("/health")).status == 200
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    assert "/projects/{project_id}/protocols" in spec["paths"]


async def test_protocol_flow_and_a_double_click_starts_one_job(client, repos):
    project = await _ready_project(client, repos)
    created = await client.post(
        f"/projects/{project['id']}/protocols", json={"title": "Add login"}, headers=AUTH
    )
    assert created.status == 201
    run = await created.json()
    assert (run["name"], run["status"]) == ("0001-add-login", "pending")

    first, second = await asyncio.gather(
        client.post(f"/protocols/{run['id']}/actions/start", headers={**AUTH, "If-Match": '"1"'}),
        client.post(f"/protocols/{run['id']}/actions/start", headers={**AUTH, "If-Match": '"1"'}),
    )
    statuses = sorted([first.status, second.status])
    assert statuses == [200, 409]
    loser = first if first.status == 409 else second
    assert (await loser.json())["error"]["code"] in ("stale_write", "illegal_transition")
    svc = client.app[SERVICES]
    jobs = await svc.queue.app.connector.execute_query_all_async(  # type: ignore[attr-defined]
        "SELECT task_name FROM procrastinate_jobs WHERE task_name = 'plan_protocol_job'"
    )
    assert len(jobs) == 1

    listed = await (
        await client.get(f"/projects/{project['id']}/protocols?status=planning", headers=AUTH)
    ).json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]
    empty = await (
        await client.get(f"/projects/{project['id']}/protocols?status=completed", headers=AUTH)
    ).json()
    assert empty["items"] == []

    async def both_events() -> list[str] | None:  # once no other transaction holds them back
        page = await (await client.get(f"/protocols/{run['id']}/events", headers=AUTH)).json()
        return [e["event_type"] for e in page["items"]] if len(page["items"]) == 2 else None

    kinds = await wait_for(both_events, seconds=30, what="two events")
    assert kinds == ["protocol.created", "protocol.planning"]
    only = await client.get(f"/protocols/{run['id']}/events?type=protocol.planning", headers=AUTH)
    assert [e["event_type"] for e in (await only.json())["items"]] == ["protocol.planning"]


async def test_step_actions_answer_conflicts_with_the_current_state(client, repos):
    project = await _ready_project(client, repos)
    run = await (
        await client.post(f"/projects/{project['id']}/protocols", json={"title": "T"}, headers=AUTH)
    ).json()
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        current = run["version"]
        for target in ("planning", "planned", "running"):
            moved = await move_protocol(conn, run["id"], ProtocolStatus(target), expected_version=current)
            current = moved.version
        [step] = await step_store.create_many(
            conn, run["id"], [{"step_index": 1, "name": "s", "step_file": "01-s.md"}]
        )
    steps = await (await client.get(f"/protocols/{run['id']}/steps", headers=AUTH)).json()
    assert [s["id"] for s in steps["items"]] == [step.id]
    qa = await client.post(f"/steps/{step.id}/actions/run_qa", headers=AUTH)
    assert qa.status == 409
    assert (await qa.json())["error"]["details"]["status"] == "pending"
    queued = await client.post(f"/protocols/{run['id']}/actions/run_next_step", headers=AUTH)
    assert queued.status == 202
    again = await client.post(f"/protocols/{run['id']}/actions/run_next_step", headers=AUTH)
    assert again.status == 409
    approve = await client.post(
        f"/steps/{step.id}/actions/approve", json={"note": "x", "extra": 1}, headers=AUTH
    )
    assert approve.status == 422


async def test_the_event_stream_delivers_new_events_and_resumes(client, repos):
    project = await _ready_project(client, repos)
    stream = await client.get(f"/events/stream?project_id={project['id']}", headers=AUTH)
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    await client.post(f"/projects/{project['id']}/protocols", json={"title": "First"}, headers=AUTH)
    first = await next_sse(stream)
    assert first["event"] == "protocol.created"
    assert '"0001-first"' in first["data"]
    stream.close()

    await client.post(f"/projects/{project['id']}/protocols", json={"title": "Second"}, headers=AUTH)
    resumed = await client.get(
        f"/events/stream?project_id={project['id']}", headers={**AUTH, "Last-Event-ID": first["id"]}
    )
    missed = await next_sse(resumed)
    assert missed["event"] == "protocol.created"
    assert '"0002-second"' in missed["data"]
    resumed.close()


async def test_project_tokens_reach_their_project_only(client, repos):
    mine = await _ready_project(client, repos, name="mine")
    other = await _ready_project(client, make_repos(repos.local.parent / "other"), name="other")
    issued = await client.post(f"/projects/{mine['id']}/token", headers=AUTH)
    assert issued.status == 201
    token = (await issued.json())["token"]
    scoped = {"X-Project-Token": token}
    assert (await client.get(f"/projects/{mine['id']}", headers=scoped)).status == 200
    run = await (
        await client.post(f"/projects/{mine['id']}/protocols", json={"title": "T"}, headers=scoped)
    ).json()
    assert (await client.get(f"/protocols/{run['id']}/events", headers=scoped)).status == 200
    for path in (
        f"/projects/{other['id']}",
        "/queue",
        "/metrics",
        f"/events/stream?project_id={other['id']}",
    ):
        denied = await client.get(path, headers=scoped)
        assert denied.status == 403, path
        assert (await denied.json())["error"]["code"] == "forbidden"
    # Lists answer what the token reaches, nothing more.
    listed = await (await client.get("/projects", headers=scoped)).json()
    assert [p["id"] for p in listed["items"]] == [mine["id"]]
    logged = await (await client.get("/events", headers=scoped)).json()
    assert logged["items"]
    assert {e["project_id"] for e in logged["items"]} == {mine["id"]}
    assert (await client.post(f"/projects/{mine['id']}/token", headers=scoped)).status == 403

    bodies = set()
    for headers in (
        {},
        {"X-Project-Token": "tgp_wrong"},
        {"Authorization": "Bearer nope"},
        {"X-Project-Token": ""},
    ):
        response = await client.get(f"/projects/{mine['id']}", headers=headers)
        assert response.status == 401
        body = await response.json()
        bodies.add((body["error"]["code"], body["error"]["message"]))
    assert len(bodies) == 1, "every failed authentication looks the same"

    renewed = await (await client.post(f"/projects/{mine['id']}/token", headers=AUTH)).json()
    assert (await client.get(f"/projects/{mine['id']}", headers=scoped)).status == 401, (
        "the old token is gone"
    )
    fresh = {"X-Project-Token": renewed["token"]}
    assert (await client.get(f"/projects/{mine['id']}", headers=fresh)).status == 200


async def test_idempotency_key_replays_the_first_answer(client, repos):
    project = await _ready_project(client, repos)
    url = f"/projects/{project['id']}/protocols"
    headers = {**AUTH, "Idempotency-Key": "create-login-1"}
    first, second = await asyncio.gather(
        client.post(url, json={"title": "Login"}, headers=headers),
        client.post(url, json={"title": "Login"}, headers=headers),
    )
    answered = sorted([first.status, second.status])
    assert answered in ([201, 201], [201, 409]), answered
    replay = await client.post(url, json={"title": "Login"}, headers=headers)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.json())["id"] == (await (first if first.status == 201 else second).json())["id"]
    listed = await (await client.get(url, headers=AUTH)).json()
    assert len(listed["items"]) == 1, "one protocol, however many retries"
    changed = await client.post(url, json={"title": "Other"}, headers=headers)
    assert changed.status == 422
    assert (await changed.json())["error"]["details"]["field"] == "Idempotency-Key"
    bad = await client.post(url, json={"title": "X"}, headers={**AUTH, "Idempotency-Key": "spaces are bad"})
    assert bad.status == 422


async def test_the_docs_page_is_served_from_our_own_assets(client):
    page = await client.get("/docs")
    assert page.status == 200
    html = await page.text()
    assert "/static/swagger-ui/swagger-ui-bundle.js" in html
    assert "http" not in html.replace("http-equiv", ""), "no asset from another host"
    bundle = await client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status == 200
    assert len(await bundle.read()) > 1_000_000
    for escape in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/swagger-ui/../../app.py"):
        assert (await client.get(escape)).status in (401, 403, 404), escape


async def test_the_openapi_document_names_the_concurrency_headers_and_shows_examples(client):
    spec = await (await client.get("/openapi.json")).json()

    def headers(path, method):
        return {p["name"] for p in spec["paths"][path][method]["parameters"] if p["in"] == "header"}

    assert headers("/projects", "post") == {"Idempotency-Key"}
    assert headers("/projects/{project_id}/protocols", "post") == {"Idempotency-Key"}
    assert headers("/projects/{project_id}", "patch") == {"If-Match"}
    assert headers("/protocols/{protocol_id}/actions/start", "post") == {"If-Match"}
    assert headers("/steps/{step_id}/actions/approve", "post") == {"If-Match"}

    def body(path):
        return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body("/projects/{project_id}/protocols")["examples"][0]["title"] == "Add a login page"
    assert body("/projects")["examples"][0]["name"] == "shop"


async def test_a_retry_carries_the_operators_note_to_the_step(client, repos):
    project = await _ready_project(client, repos)
    run = await (
        await client.post(f"/projects/{project['id']}/protocols", json={"title": "Add login"}, headers=AUTH)
    ).json()
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        run_record = await protocol_store.get(conn, run["id"])
        for target in (
            ProtocolStatus.PLANNING,
            ProtocolStatus.PLANNED,
            ProtocolStatus.RUNNING,
            ProtocolStatus.BLOCKED,
        ):
            run_record = await move_protocol(conn, run_record.id, target, expected_version=run_record.version)
        (step,) = await step_store.create_many(
            conn, run_record.id, [{"step_index": 1, "name": "s1", "step_file": "01-s.md"}]
        )
        step = await move_step(conn, step.id, StepStatus.RUNNING, expected_version=step.version)
        step = await move_step(conn, step.id, StepStatus.FAILED, expected_version=step.version)
    url = f"/steps/{step.id}/actions/retry"
    too_long = await client.post(url, json={"note": "x" * 4001}, headers=AUTH)
    assert too_long.status == 422
    assert (await too_long.json())["error"]["details"]["field"] == "note"
    retried = await client.post(url, json={"note": "Use the v2 API"}, headers=AUTH)
    assert retried.status == 200, await retried.text()
    body = await retried.json()
    assert (body["status"], body["operator_note"]) == ("pending", "Use the v2 API")
    events = await (await client.get(f"/steps/{step.id}/events?type=step.retried", headers=AUTH)).json()
    assert [(e["payload"]["by"], e["payload"]["note"]) for e in events["items"]] == [
        ("api", "Use the v2 API")
    ]
