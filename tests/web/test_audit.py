"""The audit trail over the real API, services and database: every mutating route records who did it,
a deleted project's trail stays, `GET /audit` pages and filters it and keeps each tenant to its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.config import Settings
from app.domain.actors import fingerprint
from app.domain.records import ProjectStatus, ProtocolRun, StepRun
from app.domain.scopes import Access
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.services import planning
from app.store import projects as project_store
from app.store import protocols as protocol_store
from app.store import steps as step_store
from app.store.audit_table import audit_events
from app.store.transitions import move_protocol, move_step
from app.web.app import create_app
from app.web.keys import SERVICES
from app.web.scope import ROUTE_SCOPES
from tests.support.tenants import console_sign_in, make_tenant
from tests.support.workflow import git, make_repos, wait_for

TOKEN = "audit-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
RUN_PATH = {P.PLANNING: [P.PLANNING], P.RUNNING: [P.PLANNING, P.PLANNED, P.RUNNING]}
RUN_PATH[P.PAUSED] = [*RUN_PATH[P.RUNNING], P.PAUSED]
RUN_PATH[P.BLOCKED] = [*RUN_PATH[P.RUNNING], P.BLOCKED]
STEP_PATH = {S.PENDING: [], S.NEEDS_QA: [S.RUNNING, S.NEEDS_QA], S.FAILED: [S.RUNNING, S.FAILED]}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        git_allow_local_remotes=True,
        # E-mail channels need a server named; nothing listens there, so a test message does not arrive.
        smtp_host="127.0.0.1",
        smtp_port=9,
        smtp_from="tasksgodzilla@example.com",
    )
    return await aiohttp_client(create_app(settings, database_url))


class World:
    """What the recipes act on: a fresh project (with a run in the state a route needs) per call."""

    def __init__(self, client, tmp_path) -> None:
        self.client = client
        self.tmp_path = tmp_path
        self.made = 0

    @property
    def svc(self):
        return self.client.app[SERVICES]

    async def project(self) -> dict[str, Any]:
        self.made += 1
        repos = make_repos(self.tmp_path / f"r{self.made}")
        body = {"name": f"audited-{self.made}", "local_path": str(repos.local)}
        response = await self.client.post("/projects", json=body, headers=AUTH)
        assert response.status == 201, await response.text()
        project = await response.json()
        async with self.svc.database.transaction() as conn:  # as if its setup had run
            current = await project_store.get(conn, project["id"])
            await project_store.set_status(
                conn, current.id, ProjectStatus.READY, expected_version=current.version
            )
        return project

    async def run(self, run_status: P | None = None, *steps: S, branch: bool = False) -> ProtocolRun:
        project = await self.project()
        run = await planning.create_protocol(self.svc, project["id"], title="Audited work")
        async with self.svc.database.transaction() as conn:
            for target in RUN_PATH.get(run_status, []) if run_status else []:
                run = await move_protocol(conn, run.id, target, expected_version=run.version)
            if branch:
                run = await protocol_store.update_fields(
                    conn, run.id, expected_version=run.version, branch_name="audited-branch"
                )
            made = await step_store.create_many(
                conn,
                run.id,
                [
                    {"step_index": i + 1, "name": f"s{i}", "step_file": f"0{i + 1}.md"}
                    for i in range(len(steps))
                ],
            )
            for step, wanted in zip(made, steps, strict=True):
                for target in STEP_PATH[wanted]:
                    step = await move_step(conn, step.id, target, expected_version=step.version)
        return run

    async def step(self, run_status: P, status: S) -> StepRun:
        run = await self.run(run_status, status)
        async with self.svc.database.read() as conn:
            [step] = await step_store.list_for_protocol(conn, run.id)
        return step


Recipe = Callable[[World], Awaitable[Any]]


async def _org(w: World) -> int:
    made = await w.client.post("/organisations", json={"name": f"Org {w.made}"}, headers=AUTH)
    w.made += 1
    return (await made.json())["id"]


async def _org_token(w: World) -> Any:
    return await w.client.post(f"/organisations/{await _org(w)}/token", headers=AUTH)


async def _branch_to_delete(w: World) -> Any:
    project = await w.project()
    local = project["local_path"]
    git("push", "-q", "origin", "HEAD:refs/heads/old-work", cwd=Path(local))
    return await w.client.delete(
        f"/projects/{project['id']}/branches/old-work", json={"confirm": "old-work"}, headers=AUTH
    )


async def _policy(w: World) -> Any:
    project = await w.project()
    return await w.client.put(f"/projects/{project['id']}/policy", json={"pack_key": "strict"}, headers=AUTH)


async def _pack(w: World) -> Any:
    body = {"key": "audited", "version": "1.0", "pack": {"description": "audited"}}
    return await w.client.post("/policy_packs", json=body, headers=AUTH)


async def _org_project(w: World) -> Any:
    repos = make_repos(w.tmp_path / "org-project")
    body = {"name": "org-project", "local_path": str(repos.local)}
    return await w.client.post(f"/organisations/{await _org(w)}/projects", json=body, headers=AUTH)


async def _setup_again(w: World) -> Any:
    project = await w.project()
    async with w.svc.database.transaction() as conn:  # as if the worker had taken its first setup
        await conn.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))
    return await w.client.post(f"/projects/{project['id']}/actions/setup", headers=AUTH)


async def _run_action(w: World, action: str, status: P | None, *steps: S, branch: bool = False) -> Any:
    run = await w.run(status, *steps, branch=branch)
    return await w.client.post(f"/protocols/{run.id}/actions/{action}", headers=AUTH)


async def _step_action(w: World, action: str, run_status: P, status: S, **body: Any) -> Any:
    step = await w.step(run_status, status)
    return await w.client.post(f"/steps/{step.id}/actions/{action}", json=body, headers=AUTH)


async def _run_raise(w: World) -> Any:
    run = await w.run(P.RUNNING, S.PENDING)
    body = {"scope": "protocol", "amount": 1000}
    return await w.client.post(f"/protocols/{run.id}/budget/raise", json=body, headers=AUTH)


async def _step_raise(w: World) -> Any:
    step = await w.step(P.RUNNING, S.PENDING)
    return await w.client.post(f"/steps/{step.id}/budget/raise", json={"amount": 1000}, headers=AUTH)


async def _project_call(w: World, method: str, suffix: str, body: Any = None) -> Any:
    project = await w.project()
    return await w.client.request(method, f"/projects/{project['id']}{suffix}", json=body, headers=AUTH)


WEEKLY = {"cron": "0 6 * * 1", "title": "Update dependencies"}


async def _schedule_deleted(w: World) -> Any:
    project = await w.project()
    added = await w.client.post(f"/projects/{project['id']}/schedules", json=WEEKLY, headers=AUTH)
    assert added.status == 201, await added.text()
    schedule = (await added.json())["id"]
    return await w.client.delete(f"/projects/{project['id']}/schedules/{schedule}", headers=AUTH)


MAIL_CHANNEL = {"name": "mail", "channel_type": "email", "recipients": ["dev@example.com"]}


async def _channel_call(w: World, method: str, suffix: str) -> Any:
    project = await w.project()
    added = await w.client.post(f"/projects/{project['id']}/notifications", json=MAIL_CHANNEL, headers=AUTH)
    assert added.status == 201, await added.text()
    channel = (await added.json())["id"]
    return await w.client.request(
        method, f"/projects/{project['id']}/notifications/{channel}{suffix}", headers=AUTH
    )


# Every mutating API route, with one successful call and the event it must record. A route missing
# here fails the test below: a new route is audited from its first commit.
RECIPES: dict[tuple[str, str], tuple[str, Recipe]] = {
    ("POST", "/organisations"): (
        "organisation.created",
        lambda w: w.client.post("/organisations", json={"name": "Audited Org"}, headers=AUTH),
    ),
    ("POST", "/organisations/{organisation_id}/token"): ("organisation.token_issued", _org_token),
    ("POST", "/organisations/{organisation_id}/projects"): ("project.created", _org_project),
    ("POST", "/policy_packs"): ("policy.pack_created", _pack),
    ("PUT", "/projects/{project_id}/policy"): ("project.policy_changed", _policy),
    ("POST", "/projects"): ("project.created", lambda w: w.project()),
    ("PATCH", "/projects/{project_id}"): (
        "project.updated",
        lambda w: _project_call(w, "PATCH", "", {"ci_provider": "github"}),
    ),
    ("POST", "/projects/{project_id}/actions/setup"): ("project.setup_requested", _setup_again),
    ("DELETE", "/projects/{project_id}"): ("project.deleted", lambda w: _project_call(w, "DELETE", "")),
    ("DELETE", "/projects/{project_id}/branches/{branch}"): ("branch.deleted", _branch_to_delete),
    ("POST", "/projects/{project_id}/clarifications"): (
        "setup.answered",
        lambda w: _project_call(w, "POST", "/clarifications", {"answers": {"ci_provider": "github"}}),
    ),
    ("POST", "/projects/{project_id}/token"): (
        "project.token_issued",
        lambda w: _project_call(w, "POST", "/token"),
    ),
    ("POST", "/projects/{project_id}/protocols"): (
        "protocol.created",
        lambda w: _project_call(w, "POST", "/protocols", {"title": "Audited", "start": False}),
    ),
    ("POST", "/protocols/{protocol_id}/actions/start"): (
        "protocol.planning",
        lambda w: _run_action(w, "start", None),
    ),
    ("POST", "/protocols/{protocol_id}/actions/pause"): (
        "protocol.paused",
        lambda w: _run_action(w, "pause", P.RUNNING, S.PENDING),
    ),
    ("POST", "/protocols/{protocol_id}/actions/resume"): (
        "protocol.running",
        lambda w: _run_action(w, "resume", P.PAUSED, S.PENDING),
    ),
    ("POST", "/protocols/{protocol_id}/actions/cancel"): (
        "protocol.cancelled",
        lambda w: _run_action(w, "cancel", P.RUNNING, S.PENDING),
    ),
    ("POST", "/protocols/{protocol_id}/actions/run_next_step"): (
        "step.run_requested",
        lambda w: _run_action(w, "run_next_step", P.RUNNING, S.PENDING),
    ),
    ("POST", "/protocols/{protocol_id}/actions/open_pr"): (
        "pr.requested",
        lambda w: _run_action(w, "open_pr", P.RUNNING, S.PENDING, branch=True),
    ),
    ("POST", "/steps/{step_id}/actions/run"): (
        "step.run_requested",
        lambda w: _step_action(w, "run", P.RUNNING, S.PENDING),
    ),
    ("POST", "/steps/{step_id}/actions/run_qa"): (
        "qa.requested",
        lambda w: _step_action(w, "run_qa", P.RUNNING, S.NEEDS_QA),
    ),
    ("POST", "/steps/{step_id}/actions/retry"): (
        "step.retried",
        lambda w: _step_action(w, "retry", P.BLOCKED, S.FAILED, note="again"),
    ),
    ("POST", "/steps/{step_id}/actions/approve"): (
        "step.approved",
        lambda w: _step_action(w, "approve", P.RUNNING, S.NEEDS_QA, note="fine"),
    ),
    ("POST", "/steps/{step_id}/actions/mark_critical"): (
        "step.marked_critical",  # unmarking needs no second QA choice configured
        lambda w: _step_action(w, "mark_critical", P.RUNNING, S.NEEDS_QA, critical=False),
    ),
    ("POST", "/projects/{project_id}/budget/raise"): (
        "budget.raised",
        lambda w: _project_call(w, "POST", "/budget/raise", {"scope": "project", "amount": 5}),
    ),
    ("POST", "/protocols/{protocol_id}/budget/raise"): ("budget.raised", _run_raise),
    ("POST", "/steps/{step_id}/budget/raise"): ("budget.raised", _step_raise),
    ("POST", "/projects/{project_id}/schedules"): (
        "schedule.created",
        lambda w: _project_call(w, "POST", "/schedules", WEEKLY),
    ),
    ("DELETE", "/projects/{project_id}/schedules/{schedule}"): ("schedule.deleted", _schedule_deleted),
    ("POST", "/projects/{project_id}/triggers/webhook/secret"): (
        "trigger.secret_set",
        lambda w: _project_call(w, "POST", "/triggers/webhook/secret"),
    ),
    ("POST", "/projects/{project_id}/notifications"): (
        "notification.channel_added",
        lambda w: _project_call(w, "POST", "/notifications", MAIL_CHANNEL),
    ),
    ("DELETE", "/projects/{project_id}/notifications/{channel}"): (
        "notification.channel_deleted",
        lambda w: _channel_call(w, "DELETE", ""),
    ),
    ("POST", "/projects/{project_id}/notifications/{channel}/test"): (
        "notification.tested",  # no SMTP server configured: recorded as not arrived, still the actor's
        lambda w: _channel_call(w, "POST", "/test"),
    ),
}


def _mutating_routes(app) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route, scope in app[ROUTE_SCOPES].items()
        if route.method in MUTATING
        and scope.access is not Access.PUBLIC  # webhooks and sign-in: no operator acts
        and not route.resource.canonical.startswith("/console/")
    }


async def _audit_rows_after(w: World, last_id: int) -> list[Any]:
    async with w.svc.database.read() as conn:
        query = select(audit_events).where(audit_events.c.id > last_id).order_by(audit_events.c.id)
        return list((await conn.execute(query)).all())


async def _last_audit_id(w: World) -> int:
    async with w.svc.database.read() as conn:
        return int(await conn.scalar(select(func.coalesce(func.max(audit_events.c.id), 0))))


async def test_every_mutating_route_records_its_event_naming_the_actor(client, tmp_path):
    assert _mutating_routes(client.app) == set(RECIPES), "a mutating route without an audit recipe"
    w = World(client, tmp_path)
    operator = {"kind": "operator", "id": fingerprint(TOKEN), "label": f"operator {fingerprint(TOKEN)}"}
    for (method, path), (kind, recipe) in RECIPES.items():
        before = await _last_audit_id(w)
        response = await recipe(w)
        if not isinstance(response, dict):
            assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
        rows = await _audit_rows_after(w, before)
        mine = [r for r in rows if r.event_type == kind]
        assert mine, f"{method} {path}: no {kind} in the audit trail ({[r.event_type for r in rows]})"
        for row in mine:
            assert (row.actor_kind, row.actor_id, row.actor_label, row.via) == (*operator.values(), "api")
            assert row.payload["actor"] == {**operator, "via": "api"}
    assert TOKEN not in str(await _audit_rows_after(w, 0))


async def _audit(client, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/audit{query}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def _settled(client, headers: dict[str, str], query: str, count: int) -> list[dict[str, Any]]:
    """The trail's first page once `count` rows are handed out (a row shows once every older
    transaction has finished)."""

    async def enough() -> list[dict[str, Any]] | None:
        items = (await _audit(client, headers, query))["items"]
        return items if len(items) >= count else None

    return await wait_for(enough, seconds=30, what=f"{count} audit rows for {query!r}")


async def test_a_deleted_projects_trail_stays_queryable(client, tmp_path):
    w = World(client, tmp_path)
    project = await w.project()
    url = f"/projects/{project['id']}"
    assert (await client.patch(url, json={"ci_provider": "github"}, headers=AUTH)).status == 200
    assert (await client.delete(url, headers=AUTH)).status == 204
    assert (await client.get(url, headers=AUTH)).status == 404
    items = await _settled(client, AUTH, f"?project={project['id']}", 3)
    assert [i["event_type"] for i in items] == ["project.created", "project.updated", "project.deleted"]
    assert {i["project_name"] for i in items} == {project["name"]}
    assert items[1]["payload"]["fields"] == ["ci_provider"]
    assert all(i["event_id"] is not None for i in items)  # their log entries went with the project


async def test_audit_is_scoped_to_the_caller_filtered_and_paged(client):
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha9z"), await make_tenant(svc, "bravo9z")
    as_a = {"X-Organisation-Token": a.organisation_token}
    as_b = {"X-Project-Token": b.project_token}
    for headers, tenant in ((as_a, a), (as_b, b), (AUTH, a)):
        response = await client.patch(
            f"/projects/{tenant.project.id}", json={"ci_provider": "gitlab"}, headers=headers
        )
        assert response.status == 200, await response.text()
    everything = await _settled(client, AUTH, "", 3)
    actors = [(i["actor_kind"], i["actor_label"], i["project_id"]) for i in everything]
    assert actors == [
        ("organisation", a.organisation.name, a.project.id),
        ("project", b.project.name, b.project.id),
        ("operator", f"operator {fingerprint(TOKEN)}", a.project.id),
    ]
    assert [i["actor_id"] for i in everything[:2]] == [str(a.organisation.id), str(b.project.id)]

    seen_by_a = await _settled(client, as_a, "", 2)
    assert [i["actor_kind"] for i in seen_by_a] == ["organisation", "operator"]
    seen_by_b = await _settled(client, as_b, "", 1)
    assert [i["actor_kind"] for i in seen_by_b] == ["project"]
    assert (await _audit(client, as_b, f"?project={a.project.id}"))["items"] == []  # out of reach: nothing
    refused = await client.get(f"/audit?project_id={a.project.id}", headers=as_b)
    assert refused.status == 403

    assert len((await _audit(client, AUTH, "?kind=project."))["items"]) == 3
    assert (await _audit(client, AUTH, "?kind=step."))["items"] == []
    organisation = await _audit(client, AUTH, f"?actor_kind=organisation&actor_id={a.organisation.id}")
    assert [i["actor_kind"] for i in organisation["items"]] == ["organisation"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (await _audit(client, AUTH, f"?since={later.replace('+', '%2B')}"))["items"] == []
    assert len((await _audit(client, AUTH, f"?since={earlier.replace('+', '%2B')}"))["items"]) == 3
    assert (await _audit(client, AUTH, f"?until={earlier.replace('+', '%2B')}"))["items"] == []

    pages, cursor = [], ""
    while True:
        page = await _audit(client, AUTH, f"?limit=1{cursor}")
        if not page["items"]:
            break
        pages += page["items"]
        cursor = f"&cursor={page['next_cursor']}"
    assert [i["id"] for i in pages] == [i["id"] for i in everything]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=yesterday", "since"),
        ("?since=2026-01-01T00:00:00", "since"),
        ("?actor_kind=robot", "actor_kind"),
        ("?cursor=%21%21", "cursor"),
        ("?cursor=12", "cursor"),
        ("?project=0", "project"),
        ("?limit=501", "limit"),
        ("?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("?colour=red", "colour"),
    ],
)
async def test_bad_audit_queries_are_a_422_naming_the_field(client, query, field):
    response = await client.get(f"/audit{query}", headers=AUTH)
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]["details"]["field"] == field


async def test_console_actions_name_the_credential_that_signed_in(client):
    svc = client.app[SERVICES]
    a = await make_tenant(svc, "charlie9z")
    session = await console_sign_in(client, a.organisation_token)
    response = await client.post(
        f"/console/projects/{a.project.id}/settings",
        data={"ci_provider": "github", "csrf_token": session.csrf},
        headers=session.headers("POST"),
        allow_redirects=False,
    )
    assert response.status < 400, await response.text()
    [row] = await _settled(client, AUTH, "?kind=project.updated", 1)
    assert (row["actor_kind"], row["actor_id"], row["actor_label"], row["via"]) == (
        "organisation",
        str(a.organisation.id),
        a.organisation.name,
        "console",
    )


async def test_console_sign_in_and_out_are_in_the_trail_naming_who(client):
    svc = client.app[SERVICES]
    a = await make_tenant(svc, "delta7q")
    session = await console_sign_in(client, a.organisation_token)
    signed_out = await client.post(
        "/console/logout",
        data={"csrf_token": session.csrf},
        headers=session.headers("POST"),
        allow_redirects=False,
    )
    assert signed_out.status == 303, await signed_out.text()
    await console_sign_in(client, TOKEN)  # the operator
    client.session.cookie_jar.clear()  # another browser
    await console_sign_in(client, a.project_token)
    rows = await _settled(client, AUTH, "?kind=console.", 4)
    assert [(r["event_type"], r["actor_kind"], r["actor_label"], r["via"]) for r in rows] == [
        ("console.signed_in", "organisation", a.organisation.name, "console"),
        ("console.signed_out", "organisation", a.organisation.name, "console"),
        ("console.signed_in", "operator", f"operator {fingerprint(TOKEN)}", "console"),
        ("console.signed_in", "project", a.project.name, "console"),
    ]
    assert rows[0]["organisation_id"] == a.organisation.id
    # A project token's sign-in is its organisation's record, naming the project, not project news.
    assert (rows[3]["organisation_id"], rows[3]["payload"]["project_id"]) == (a.organisation.id, a.project.id)
    tokens = (TOKEN, a.organisation_token, a.project_token)
    assert all(token not in str(r) for r in rows for token in tokens)
