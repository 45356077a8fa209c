"""Project setup: clone or locate, recommendations, discovery, waiting for the operator's answers."""

from __future__ import annotations

import os

import pytest

from app.domain.records import ProjectStatus
from app.errors import ConflictError, InvalidInputError
from app.services import planning, projects
from app.services.policy import create_pack, set_project_policy
from app.store import events
from app.store import projects as project_store
from tests.support.workflow import make_repos, project_ready, running_worker, wait_for, workflow_settings


async def _project(svc, project_id):
    async with svc.database.transaction() as conn:
        return await project_store.get(conn, project_id)


async def _events(svc, project_id, kind):
    async with svc.database.transaction() as conn:
        return await events.list_page(conn, project_id=project_id, event_types=[kind])


async def test_a_git_url_is_cloned_under_the_projects_root(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, setup_discovery=True)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        made = await projects.register_project(svc, name="cloned", git_url=str(repos.origin))

        async def ready():
            return (await _project(svc, made.id)).status is ProjectStatus.READY

        await wait_for(ready, what="the clone")
        project = await _project(svc, made.id)
        [clarifications] = await _events(svc, made.id, "setup.clarifications")
        [discovery] = await _events(svc, made.id, "setup.discovery")
    expected = tmp_path / "data" / "projects" / "cloned" / "repo"
    assert project.local_path is None  # a clone's place is derived on each machine, never stored
    assert (expected / "README.md").read_text() == "demo\n"
    keys = [q["key"] for q in clarifications.payload["questions"]]
    assert keys == ["ci_provider", "execution_engine", "execution_model", "qa_engine", "qa_model"]
    assert clarifications.payload["blocking"] is False
    assert "README.md" in discovery.payload["report"]


async def test_setup_can_wait_for_answers_before_work_starts(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, setup_wait_for_answers=True)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        made = await projects.register_project(svc, name="careful", local_path=str(repos.local))

        async def waiting():
            return (await _project(svc, made.id)).status is ProjectStatus.AWAITING_ANSWERS

        await wait_for(waiting, what="setup to ask")
        run = await planning.create_protocol(svc, made.id, title="Too early")
        with pytest.raises(ConflictError, match="awaiting_answers"):
            await planning.start_protocol(svc, run.id)
        with pytest.raises(InvalidInputError) as bad:
            await projects.answer_clarifications(svc, made.id, {"colour": "red"})
        assert bad.value.details == {"field": "colour"}
        with pytest.raises(InvalidInputError):
            await projects.answer_clarifications(svc, made.id, {"qa_engine": "gpt"})
        answered = await projects.answer_clarifications(
            svc, made.id, {"ci_provider": "github", "qa_engine": "command"}
        )
        started = await planning.start_protocol(svc, run.id)
    assert (answered.status, answered.ci_provider, answered.qa_engine) == (
        ProjectStatus.READY,
        "github",
        "command",
    )
    assert started.status.value == "planning"


async def test_registration_refuses_bad_input_and_keeps_nothing(database_url, tmp_path):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, git_allow_local_remotes=False)
    async with running_worker(settings, database_url, environ=dict(os.environ)) as svc:
        for kwargs, field in [
            ({"name": "../up", "local_path": str(repos.local)}, "name"),
            ({"name": "ok"}, "git_url"),
            ({"name": "ok", "git_url": "ext::sh -c touch% /tmp/x"}, "git_url"),
            ({"name": "ok", "git_url": str(repos.origin)}, "git_url"),
            ({"name": "ok", "local_path": "relative/path"}, "local_path"),
            ({"name": "ok", "local_path": str(repos.local), "base_branch": "-x"}, "base_branch"),
        ]:
            with pytest.raises(InvalidInputError) as refused:
                await projects.register_project(svc, **kwargs)
            assert refused.value.details.get("field") == field, kwargs
        async with svc.database.transaction() as conn:
            assert await project_store.list_page(conn) == []


TEAM = {
    "onboarding": {
        "questions": [
            {"key": "test_command", "question": "Which command runs the tests?", "required": True},
            {"key": "approver", "question": "Who approves changes?", "required": True},
            {"key": "goal", "question": "What first?", "required": False},
        ]
    },
    "findings": {"blocking": ["onboarding.missing_answer"]},
}


async def test_the_packs_questions_are_asked_and_a_strict_project_waits_for_the_required_ones(
    database_url, tmp_path
):
    """Setup asks the pack's questions beside its own; a strict project whose pack blocks on a missing
    answer waits for every required one (though the settings say not to wait), then is ready."""
    repos = make_repos(tmp_path)
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        await create_pack(svc, key="team", version="1.0", pack=TEAM)
        made = await projects.register_project(svc, name="careful", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, made.id), what="setup under the default pack")
        await set_project_policy(svc, made.id, pack_key="team", strict=True)
        await projects.request_setup(svc, made.id)

        async def waiting():
            return (await _project(svc, made.id)).status is ProjectStatus.AWAITING_ANSWERS

        await wait_for(waiting, what="setup to wait for the required answers")
        asked = (await _events(svc, made.id, "setup.clarifications"))[-1]
        partly = await projects.answer_clarifications(svc, made.id, {"test_command": "make test", "goal": ""})
        run = await planning.create_protocol(svc, made.id, title="Too early")
        with pytest.raises(ConflictError, match="awaiting_answers"):
            await planning.start_protocol(svc, run.id)
        answered = await projects.answer_clarifications(svc, made.id, {"approver": "Ada"})
        started = await planning.start_protocol(svc, run.id)
        said = await _events(svc, made.id, "setup.answered")

    pack_asked = [q for q in asked.payload["questions"] if q.get("source") == "policy"]
    assert [(q["key"], q["required"]) for q in pack_asked] == [
        ("test_command", True),
        ("approver", True),
        ("goal", False),
    ]
    assert (asked.payload["blocking"], asked.payload["held_by"]) == (True, "onboarding.missing_answer")
    assert partly.status is ProjectStatus.AWAITING_ANSWERS
    assert "setup still waits: no answer to 'Who approves changes?' (approver)" in said[0].message
    assert answered.status is ProjectStatus.READY
    assert started.status.value == "planning"


async def test_a_project_that_is_not_strict_is_never_held_by_its_packs_questions(database_url, tmp_path):
    repos = make_repos(tmp_path)
    async with running_worker(workflow_settings(tmp_path), database_url, environ=dict(os.environ)) as svc:
        await create_pack(svc, key="default", version="2.0", pack=TEAM)
        made = await projects.register_project(svc, name="relaxed", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, made.id), what="setup")
        [asked] = await _events(svc, made.id, "setup.clarifications")
    assert [q["key"] for q in asked.payload["questions"]][-3:] == ["test_command", "approver", "goal"]
    assert (asked.payload["blocking"], asked.payload["held_by"]) == (False, None)
