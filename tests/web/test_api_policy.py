"""Policy packs and project policy over HTTP: catalogue, selection, overrides, effective policy."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.web.app import create_app
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


@pytest.fixture
async def project(client, tmp_path):
    repos = make_repos(tmp_path)
    response = await client.post(
        "/projects", json={"name": "demo", "local_path": str(repos.local)}, headers=AUTH
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def test_the_catalogue_lists_the_seeded_packs_and_the_schema(client) -> None:
    listed = await (await client.get("/policy_packs", headers=AUTH)).json()
    assert {item["key"]: item["latest_active_version"] for item in listed["items"]} == {
        "default": "1.0",
        "starter": "1.0",
        "strict": "1.0",
    }
    schema = await (await client.get("/policy_packs/schema", headers=AUTH)).json()
    assert schema["additionalProperties"] is False
    strict = await (await client.get("/policy_packs/strict", headers=AUTH)).json()
    assert strict["items"][0]["pack"]["auto_merge"] is False
    assert (await client.get("/policy_packs/nope", headers=AUTH)).status == 404


async def test_a_new_project_is_on_the_latest_default_and_its_effective_policy_follows_overrides(
    client, project
):
    url = f"/projects/{project['id']}/policy"
    assert await (await client.get(url, headers=AUTH)).json() == {
        "project_id": project["id"],
        "pack_key": "default",
        "pack_version": None,
        "overrides": {},
        "strict": False,
        "repo_local_enabled": False,
        "repo_local_paths": [
            ".tasksgodzilla/policy.yml",
            ".tasksgodzilla/policy.yaml",
            ".tasksgodzilla/policy.json",
        ],
    }
    before = await (await client.get(f"{url}/effective", headers=AUTH)).json()
    assert before["pack_key"] == "default"
    assert before["pack_version"] == "1.0"
    put = await client.put(
        url,
        json={"pack_key": "strict", "overrides": {"plan": {"max_steps": 8}}, "strict": True},
        headers=AUTH,
    )
    assert put.status == 200, await put.text()
    after = await (await client.get(f"{url}/effective", headers=AUTH)).json()
    assert after["hash"] != before["hash"]
    assert after["policy"]["plan"]["max_steps"] == 8
    assert after["policy"]["plan"]["required_sections"] == ["Goal", "Steps", "Risks"]
    assert after["strict"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pack_key": "strict", "overrides": {"auto_merge": True}}, "overrides.auto_merge"),  # locked
        ({"pack_key": "strict", "overrides": {"paths": {"forbidden": []}}}, "overrides.paths.forbidden"),
        ({"pack_key": "default", "overrides": {"plan": {"max_steps": "9"}}}, "overrides.plan.max_steps"),
        ({"pack_key": "default", "overrides": {"planz": {}}}, "overrides.planz"),
        ({"pack_key": "nope"}, "pack_key"),
        (
            {"pack_key": "default", "overrides": {"engines": {"execution": {"engine": "gpt-5"}}}},
            "overrides.engines.execution.engine",
        ),
        ({"pack_key": "default", "overrides": {"qa": {"engine": "Codex"}}}, "overrides.qa.engine"),
        (
            {"pack_key": "default", "overrides": {"engines": {"qa": {"fallbacks": [{"engine": "gemini"}]}}}},
            "overrides.engines.qa.fallbacks.0.engine",
        ),
        ({"pack_key": "default", "pack_version": "9.9"}, "pack_key"),
    ],
)
async def test_a_policy_that_cannot_be_saved_is_a_422_naming_the_field(client, project, body, field) -> None:
    response = await client.put(f"/projects/{project['id']}/policy", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]["details"]["field"] == field


async def test_the_operator_adds_a_version_and_latest_active_follows_it(client, project) -> None:
    pack = {"description": "Default, with risks", "plan": {"required_sections": ["Risks"]}}
    created = await client.post(
        "/policy_packs", json={"key": "default", "version": "1.1", "pack": pack}, headers=AUTH
    )
    assert created.status == 201, await created.text()
    assert (await created.json())["pack"]["plan"]["required_sections"] == ["Risks"]
    effective = await (await client.get(f"/projects/{project['id']}/policy/effective", headers=AUTH)).json()
    assert effective["pack_version"] == "1.1"
    again = await client.post(
        "/policy_packs", json={"key": "default", "version": "1.1", "pack": {}}, headers=AUTH
    )
    assert again.status == 409
    bad = await client.post(
        "/policy_packs", json={"key": "x", "version": "1", "pack": {"auto_merge": 1}}, headers=AUTH
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["details"]["field"] == "pack.auto_merge"


@pytest.mark.parametrize(
    ("pack", "field"),
    [
        ({"engines": {"planning": {"engine": "gemini", "model": "pro"}}}, "pack.engines.planning.engine"),
        ({"qa": {"second_opinion": {"engine": "opus"}}}, "pack.qa.second_opinion.engine"),
        (
            {
                "engines": {
                    "execution": {"fallbacks": [{"engine": "codex"}, {"engine": "opus", "model": "x"}]}
                }
            },
            "pack.engines.execution.fallbacks.1.engine",
        ),
    ],
)
async def test_a_pack_naming_an_unknown_engine_is_a_422_naming_the_field(client, pack, field) -> None:
    body = {"key": "x", "version": "1", "pack": pack}
    response = await client.post("/policy_packs", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["details"]["field"] == field
    assert "is not an engine" in error["message"]
    models = {"engines": {"planning": {"engine": "claude", "model": "any model name at all"}}}
    fine = await client.post("/policy_packs", json={"key": "x", "version": "1", "pack": models}, headers=AUTH)
    assert fine.status == 201, await fine.text()  # models are free text


async def test_a_draft_pack_cannot_be_picked(client, project) -> None:
    await client.post(
        "/policy_packs", json={"key": "beta", "version": "0.1", "status": "draft", "pack": {}}, headers=AUTH
    )
    response = await client.put(
        f"/projects/{project['id']}/policy", json={"pack_key": "beta", "pack_version": "0.1"}, headers=AUTH
    )
    assert response.status == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "policy", {"pack_key": "default", "overrides": {"git": {"commit_convention": "a\u0000b"}}}),
        ("PUT", "policy", {"pack_key": "default", "overrides": {"description": "x\u202ey"}}),
        ("PUT", "policy", {"pack_key": "default", "pack_version": "1\u0000"}),
        ("POST", None, {"key": "k", "version": "1", "name": "a\u0000", "pack": {}}),
        ("POST", None, {"key": "k", "version": "1", "pack": {"paths": {"forbidden": ["a\u0000"]}}}),
    ],
)
async def test_hidden_characters_are_a_422_never_a_500(client, project, method, path, body) -> None:
    url = f"/projects/{project['id']}/policy" if path else "/policy_packs"
    response = await client.request(method, url, json=body, headers=AUTH)
    assert response.status == 422, await response.text()


async def test_a_pack_key_that_no_pack_can_have_is_not_found(client) -> None:
    assert (await client.get("/policy_packs/a%00b", headers=AUTH)).status == 422  # the path's text is checked
    assert (await client.get("/policy_packs/A..b", headers=AUTH)).status == 404


async def test_a_run_not_planned_yet_answers_with_its_projects_central_policy(client, project) -> None:
    from app.services.policy import policy_for_project, policy_for_run
    from app.web.keys import SERVICES

    created = await client.post(f"/projects/{project['id']}/protocols", json={"title": "Later"}, headers=AUTH)
    assert created.status == 201, await created.text()
    svc = client.app[SERVICES]
    before = await policy_for_run(svc, (await created.json())["id"])
    assert before == await policy_for_project(svc, project["id"])
    assert (before.pack_key, before.pack_version, before.strict) == ("default", "1.0", False)


async def test_the_packs_setup_questions_are_answered_over_http(client, project) -> None:
    url = f"/projects/{project['id']}/clarifications"
    put = await client.put(f"/projects/{project['id']}/policy", json={"pack_key": "starter"}, headers=AUTH)
    assert put.status == 200, await put.text()
    for answers, field in [
        ({"colour": "red"}, "colour"),
        ({"goal": "x" * 501}, "goal"),
        ({"off_limits": "docs\u202egnp"}, "off_limits"),
    ]:
        refused = await client.post(url, json={"answers": answers}, headers=AUTH)
        assert refused.status == 422, await refused.text()
        assert (await refused.json())["error"]["details"]["field"] == field
    answered = await client.post(url, json={"answers": {"test_command": "pytest -q"}}, headers=AUTH)
    assert answered.status == 200, await answered.text()
    assert "test_command" not in await answered.json()  # an answer to the pack is no project setting
    feed = await client.get(f"/projects/{project['id']}/events?type=setup.answered", headers=AUTH)
    [event] = (await feed.json())["items"]
    assert event["payload"]["answers"] == {"test_command": "pytest -q"}
