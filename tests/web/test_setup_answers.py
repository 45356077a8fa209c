"""Every answer setup recommends can be given back as is, and is stored as what it means: an engine
in the engine field, a model in the model field, no model and no CI as no value (never the text)."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.records import ProjectStatus
from app.domain.selection import EngineChoice
from app.errors import InvalidInputError
from app.services import projects
from app.store import projects as project_store
from app.web.app import create_app
from app.web.keys import SERVICES

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def _waiting_project(client):
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        made = await project_store.create(conn, name="demo", local_path="/srv/repos/demo")
        return await project_store.set_status(
            conn, made.id, ProjectStatus.AWAITING_ANSWERS, expected_version=made.version
        )


async def test_the_recommended_answers_are_accepted_and_stored_as_what_they_mean(client, tmp_path):
    project = await _waiting_project(client)
    asked = projects.recommendations(
        tmp_path, EngineChoice("command", None), EngineChoice("codex", "gpt-5.1-codex-mini")
    )
    answers = {q["key"]: q["recommended"] for q in asked}
    assert answers == {
        "ci_provider": "none",
        "execution_engine": "command",
        "execution_model": "default",
        "qa_engine": "codex",
        "qa_model": "gpt-5.1-codex-mini",
    }
    response = await client.post(
        f"/projects/{project.id}/clarifications", json={"answers": answers}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    stored = await response.json()
    assert stored["status"] == "ready"
    assert stored["ci_provider"] is None
    assert (stored["execution_engine"], stored["execution_model"]) == ("command", None)
    assert (stored["qa_engine"], stored["qa_model"]) == ("codex", "gpt-5.1-codex-mini")


async def test_an_engine_model_answer_sets_both_fields(client):
    project = await _waiting_project(client)
    svc = client.app[SERVICES]
    answered = await projects.answer_clarifications(
        svc, project.id, {"execution_model": "command:None", "qa_model": "claude:claude-sonnet-4-5"}
    )
    assert (answered.execution_engine, answered.execution_model) == ("command", None)
    assert (answered.qa_engine, answered.qa_model) == ("claude", "claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("key", "value"), [("ci_provider", "jenkins"), ("qa_engine", "gpt"), ("branch_pattern", "x/{name}")]
)
async def test_an_answer_that_means_nothing_is_refused_naming_its_question(client, key, value):
    project = await _waiting_project(client)
    with pytest.raises(InvalidInputError) as refused:
        await projects.answer_clarifications(client.app[SERVICES], project.id, {key: value})
    assert refused.value.details == {"field": key}
