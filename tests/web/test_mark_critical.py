"""Marking a step critical over the API: refused (409, naming what to configure) when no second QA
choice differs from the first; allowed when the run's QA differs from the settings' or the policy
names a second opinion; bad bodies are 422s; the action is recorded with its actor."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from app.config import Settings
from app.domain.records import ProjectStatus
from app.domain.statuses import StepStatus as S
from app.services import planning
from app.store import events
from app.store import projects as project_store
from app.store import steps as step_store
from app.store.tables import projects as project_rows
from app.store.transitions import move_step
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False,
        api_token=TOKEN,
        data_dir=tmp_path / "data",
        git_allow_local_remotes=True,
        qa_engine="codex",
    )
    return await aiohttp_client(create_app(settings, database_url))


async def _step(client, tmp_path, name: str, *path: S, **choices: Any):
    svc = client.app[SERVICES]
    repos = make_repos(tmp_path / name)
    made = await client.post("/projects", json={"name": name, "local_path": str(repos.local)}, headers=AUTH)
    assert made.status == 201, await made.text()
    project_id = (await made.json())["id"]
    async with svc.database.transaction() as conn:
        project = await project_store.get(conn, project_id)
        await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    run = await planning.create_protocol(svc, project_id, title="Careful work", **choices)
    async with svc.database.transaction() as conn:
        [step] = await step_store.create_many(
            conn, run.id, [{"step_index": 1, "name": "s", "step_file": "01-s.md"}]
        )
        for target in path:
            step = await move_step(conn, step.id, target, expected_version=step.version)
    return svc, step


async def _mark(client, step_id: int, body: Any) -> Any:
    return await client.post(f"/steps/{step_id}/actions/mark_critical", json=body, headers=AUTH)


async def test_no_distinct_second_opinion_is_a_409_naming_what_to_configure(client, tmp_path):
    svc, step = await _step(client, tmp_path, "same", S.RUNNING, S.NEEDS_QA)
    refused = await _mark(client, step.id, {})
    assert refused.status == 409, await refused.text()
    text = await refused.text()
    assert "no second QA opinion differs from the first (codex/" in text
    assert "qa.second_opinion" in text
    async with svc.database.read() as conn:
        assert not (await step_store.get(conn, step.id)).critical


async def test_a_run_whose_qa_differs_from_the_settings_can_be_marked_and_unmarked(client, tmp_path):
    svc, step = await _step(client, tmp_path, "other", S.RUNNING, qa_engine="claude")
    marked = await _mark(client, step.id, {"critical": True})
    assert marked.status == 200, await marked.text()
    assert (await marked.json())["critical"] is True
    unmarked = await _mark(client, step.id, {"critical": False})
    assert (await unmarked.json())["critical"] is False
    async with svc.database.read() as conn:
        said = await events.recent(conn, step_run_id=step.id, type_prefix="step.marked_critical")
    assert [(e.payload["critical"], e.payload["actor"]["kind"]) for e in reversed(said)] == [
        (True, "operator"),
        (False, "operator"),
    ]


async def test_a_policy_naming_a_second_opinion_allows_marking(client, tmp_path):
    svc, step = await _step(client, tmp_path, "strict")
    async with svc.database.transaction() as conn:  # the seeded `strict` pack asks claude for one
        await conn.execute(update(project_rows).values(policy_pack_key="strict", policy_pack_version="1.0"))
    marked = await _mark(client, step.id, {})
    assert marked.status == 200, await marked.text()


@pytest.mark.parametrize(("body", "field"), [({"critical": "yes"}, "critical"), ({"other": 1}, "other")])
async def test_bad_bodies_are_a_422_naming_the_field(client, tmp_path, body, field):
    _, step = await _step(client, tmp_path, "bad", qa_engine="claude")
    response = await _mark(client, step.id, body)
    assert response.status == 422
    assert field in await response.text()


async def test_a_step_whose_qa_is_over_is_a_409(client, tmp_path):
    _, step = await _step(client, tmp_path, "done", S.RUNNING, S.NEEDS_QA, S.COMPLETED, qa_engine="claude")
    refused = await _mark(client, step.id, {})
    assert refused.status == 409
    assert "its QA is over" in await refused.text()
    assert (await _mark(client, 999999, {})).status == 404
