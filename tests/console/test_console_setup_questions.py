"""The console's setup form offers the questions of the project's pack beside its own, and saves them."""

from __future__ import annotations

from app.config import Settings
from app.domain.records import ProjectStatus
from app.services import projects
from app.services.events import record
from app.services.policy import policy_for_project, set_project_policy
from app.store import events
from app.store import projects as project_store
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import csrf_of, sign_in

TOKEN = "console-token-0123456789"


async def test_the_packs_questions_are_offered_and_answered(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    client = await aiohttp_client(create_app(settings, database_url))
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        made = await project_store.create(conn, name="demo", local_path="/srv/repos/demo")
    await set_project_policy(svc, made.id, pack_key="starter")
    asked = projects.pack_questions((await policy_for_project(svc, made.id)).policy)
    async with svc.database.transaction() as conn:  # what setup records (app.services.projects)
        project = await project_store.get(conn, made.id)
        await project_store.set_status(
            conn, made.id, ProjectStatus.AWAITING_ANSWERS, expected_version=project.version
        )
        questions = [{"key": "ci_provider", "question": "Which CI?", "recommended": "none"}, *asked]
        await record(conn, made.id, "setup.clarifications", "asked", questions=questions, blocking=True)
    await sign_in(client, TOKEN)

    page = await (await client.get(f"/console/projects/{made.id}")).text()
    form = page[page.index("Setup questions") :]
    assert 'name="answer.ci_provider"' in form
    assert "How are the tests run (for example `pytest -q`)?" in form
    assert 'name="answer.test_command"' in form
    assert 'name="answer.off_limits"' in form

    csrf = await csrf_of(client, f"/console/projects/{made.id}")
    url = f"/console/projects/{made.id}/clarifications"
    saved = await client.post(
        url,
        data={"csrf_token": csrf, "answer.test_command": "pytest -q", "answer.goal": ""},
        allow_redirects=False,
    )
    assert saved.status == 303, await saved.text()
    async with svc.database.read() as conn:
        [answered] = await events.recent(conn, project_id=made.id, type_prefix="setup.answered")
        project = await project_store.get(conn, made.id)
    assert answered.payload["answers"] == {"test_command": "pytest -q"}
    assert project.status is ProjectStatus.READY  # not strict: nothing holds it
