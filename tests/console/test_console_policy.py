"""The project's policy page: the pack picker, overrides (fields and JSON), strict and repository-file
toggles, a preview that saves nothing, saving, refusals shown in the page with nothing lost or saved,
and other organisations' projects out of reach."""

from __future__ import annotations

import html
import re

import pytest

from app.config import Settings
from app.domain.policy import merge, policy_hash
from app.domain.policy_file import PATHS
from app.domain.records import ProjectStatus
from app.services.policy import policy_for_project
from app.store import events, policy_packs
from app.store import projects as project_store
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import csrf_of, sign_in
from tests.support.tenants import make_tenant

TOKEN = "console-token-0123456789"
HASH = re.compile(r'<code class="hash">([0-9a-f]{64})</code>')


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


@pytest.fixture
async def project(client):
    async with client.app[SERVICES].database.transaction() as conn:
        made = await project_store.create(conn, name="shop", local_path="/srv/repos/shop")
        return await project_store.set_status(
            conn, made.id, ProjectStatus.READY, expected_version=made.version
        )


async def _post(client, url: str, csrf: str, **fields: str):
    return await client.post(url, data={"csrf_token": csrf, **fields}, allow_redirects=False)


async def _stored(client, project_id: int):
    async with client.app[SERVICES].database.read() as conn:
        return await project_store.get(conn, project_id)


async def _policy_changes(client, project_id: int) -> int:
    async with client.app[SERVICES].database.read() as conn:
        found = await events.recent(conn, project_id=project_id, type_prefix="project.policy_changed")
    return len(found)


async def _default_pack(client) -> dict:
    async with client.app[SERVICES].database.read() as conn:
        return (await policy_packs.latest_active(conn, "default")).pack


async def test_the_page_shows_the_catalogue_the_toggles_and_the_saved_policy(client, project):
    await sign_in(client, TOKEN)
    project_page = await (await client.get(f"/console/projects/{project.id}")).text()
    assert f'href="/console/projects/{project.id}/policy"' in project_page
    page = await client.get(f"/console/projects/{project.id}/policy")
    assert page.status == 200
    text = await page.text()
    for key in ("default", "strict", "starter"):
        assert f'name="pack_key" value="{key}"' in text
        assert f'name="pack_version.{key}"' in text
    assert "Regulated repositories: tests required" in text  # strict's description
    assert '<option value="">latest active</option>' in text
    assert 'name="pack_key" value="default" checked' in text
    for path in PATHS:
        assert f"<code>{path}</code>" in text
    assert 'name="strict" value="true" >' in text  # unchecked
    saved = await policy_for_project(client.app[SERVICES], project.id)
    assert HASH.findall(text) == [saved.hash]
    assert "Saved policy" in text


async def test_preview_shows_the_forms_policy_and_saves_nothing(client, project):
    await sign_in(client, TOKEN)
    url = f"/console/projects/{project.id}/policy"
    csrf = await csrf_of(client, url)
    answer = await _post(
        client,
        url + "/preview",
        csrf,
        pack_key="default",
        **{"plan.required_sections": "Goal, Rollback", "plan.max_steps": "8", "overrides_shown": "{}"},
    )
    assert answer.status == 200, await answer.text()
    text = await answer.text()
    expected, _ = merge(
        await _default_pack(client), {"plan": {"required_sections": ["Goal", "Rollback"], "max_steps": 8}}
    )
    assert HASH.findall(text) == [policy_hash(expected)]
    assert "Preview, not saved" in text
    assert '"Rollback"' in html.unescape(text)
    stored = await _stored(client, project.id)
    assert stored.policy_overrides == {}
    assert stored.version == project.version
    assert await _policy_changes(client, project.id) == 0


async def test_save_stores_the_selection_and_the_page_shows_it(client, project):
    await sign_in(client, TOKEN)
    url = f"/console/projects/{project.id}/policy"
    csrf = await csrf_of(client, url)
    fields = {
        "plan.required_sections": "Goal\nSteps\nRisks\nRollback",
        "limits.tokens_per_step": "5000",
        "qa.strictness": "strict",
        "overrides_shown": "{}",
        "overrides_json": "{}",
        "strict": "true",
        "repo_local_enabled": "true",
        "pack_version.strict": "1.0",
    }
    answer = await _post(client, url, csrf, pack_key="strict", **fields)
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"] == url + "?saved=1"
    stored = await _stored(client, project.id)
    assert (stored.policy_pack_key, stored.policy_pack_version) == ("strict", "1.0")
    assert stored.policy_overrides == {
        "plan": {"required_sections": ["Goal", "Steps", "Risks", "Rollback"]},
        "limits": {"tokens_per_step": 5000},
        "qa": {"strictness": "strict"},
    }
    assert stored.policy_strict
    assert stored.policy_repo_local_enabled
    page = await (await client.get(url + "?saved=1")).text()
    assert "policy saved" in page
    assert 'name="pack_key" value="strict" checked' in page
    assert '<option value="1.0" selected>' in page
    assert 'name="strict" value="true" checked' in page
    assert "Goal\nSteps\nRisks\nRollback</textarea>" in page
    assert HASH.findall(page) == [(await policy_for_project(client.app[SERVICES], project.id)).hash]


async def test_an_edited_json_box_wins_and_an_unedited_one_takes_the_fields(client, project):
    await sign_in(client, TOKEN)
    url = f"/console/projects/{project.id}/policy"
    csrf = await csrf_of(client, url)
    shown = '{"plan":{"max_steps":4},"qa":{"strictness":"lenient"}}'
    # Unedited (only its whitespace differs): the fields apply over it; a blank field removes its value.
    unedited = '{\n  "qa": {"strictness": "lenient"},\n  "plan": {"max_steps": 4}\n}'
    answer = await _post(
        client, url, csrf, pack_key="default", overrides_shown=shown, overrides_json=unedited,
        **{"plan.max_steps": "9", "auto_merge": "true"},
    )  # fmt: skip
    assert answer.status == 303, await answer.text()
    assert (await _stored(client, project.id)).policy_overrides == {
        "plan": {"max_steps": 9},
        "auto_merge": True,
    }

    edited = '{"plan": {"max_steps": 5}}'
    answer = await _post(
        client, url, csrf, pack_key="default", overrides_shown=shown, overrides_json=edited,
        **{"plan.max_steps": "9", "qa.strictness": "strict"},
    )  # fmt: skip
    assert answer.status == 303, await answer.text()
    assert (await _stored(client, project.id)).policy_overrides == {"plan": {"max_steps": 5}}


async def test_invalid_json_is_shown_naming_the_field_with_every_value_kept_and_nothing_saved(
    client, project
):
    await sign_in(client, TOKEN)
    url = f"/console/projects/{project.id}/policy"
    csrf = await csrf_of(client, url)
    fields = {
        "overrides_json": '{"plan": ',
        "plan.max_steps": "7",
        "strict": "true",
        "pack_version.starter": "1.0",
    }
    answer = await _post(client, url, csrf, pack_key="starter", overrides_shown="{}", **fields)
    assert answer.status == 422
    text = await answer.text()
    assert "overrides_json: not valid JSON" in text
    assert 'class="notice error"' in text
    assert 'name="overrides_json" rows="10" class="mono" spellcheck="false" aria-invalid="true"' in text
    assert ">{&#34;plan&#34;:</textarea>" in text  # the text as typed (trimmed), escaped
    assert 'value="7"' in text
    assert 'name="strict" value="true" checked' in text
    assert 'name="pack_key" value="starter" checked' in text
    stored = await _stored(client, project.id)
    assert stored.version == project.version
    assert stored.policy_pack_key == project.policy_pack_key
    assert await _policy_changes(client, project.id) == 0

    preview = await _post(client, url + "/preview", csrf, pack_key="default", overrides_json="[1]")
    assert preview.status == 422
    assert "overrides_json: must be a JSON object" in await preview.text()
    not_a_number = await _post(
        client, url + "/preview", csrf, pack_key="default", **{"plan.max_steps": "lots"}
    )
    assert not_a_number.status == 422
    assert "plan.max_steps: a whole number" in await not_a_number.text()
    wrong_shape = await _post(
        client, url, csrf, pack_key="default", overrides_json='{"plan": {"max_step": 3}}'
    )
    assert wrong_shape.status == 422
    assert "overrides.plan.max_step" in await wrong_shape.text()


async def test_loosening_a_locked_field_is_refused_naming_it_and_previewed_as_a_problem(client, project):
    await sign_in(client, TOKEN)
    url = f"/console/projects/{project.id}/policy"
    csrf = await csrf_of(client, url)
    loosening = {"pack_version.strict": "1.0", "auto_merge": "true", "overrides_shown": "{}"}
    answer = await _post(client, url, csrf, pack_key="strict", **loosening)
    assert answer.status == 422
    text = await answer.text()
    assert "overrides.auto_merge: locked by pack strict@1.0, it cannot be loosened" in text
    assert 'name="auto_merge" aria-invalid="true"' in text
    assert '<option value="true" selected>' in text
    assert (await _stored(client, project.id)).policy_pack_key in (None, "default")
    assert await _policy_changes(client, project.id) == 0

    preview = await _post(client, url + "/preview", csrf, pack_key="strict", **loosening)
    assert preview.status == 200
    shown = await preview.text()
    assert "<code>auto_merge</code>" in shown
    assert "(saving is refused)" in shown
    assert '"auto_merge": false' in html.unescape(shown)


async def test_an_unknown_or_inactive_pack_is_refused_naming_the_field(client, project):
    await sign_in(client, TOKEN)
    url = f"/console/projects/{project.id}/policy"
    csrf = await csrf_of(client, url)
    unknown = await _post(client, url, csrf, pack_key="nosuch")
    assert unknown.status == 422
    assert "no active policy pack nosuch" in await unknown.text()
    version = await _post(client, url + "/preview", csrf, pack_key="strict", **{"pack_version.strict": "9.9"})
    assert version.status == 422
    assert "no active policy pack strict@9.9" in await version.text()
    none_chosen = await _post(client, url, csrf)
    assert none_chosen.status == 422
    assert "pack_key: choose a pack" in await none_chosen.text()
    assert await _policy_changes(client, project.id) == 0


async def test_another_organisations_project_policy_is_out_of_reach(client):
    svc = client.app[SERVICES]
    a, b = await make_tenant(svc, "alpha7q"), await make_tenant(svc, "bravo7q")
    await sign_in(client, a.organisation_token)
    mine = f"/console/projects/{a.project.id}/policy"
    assert (await client.get(mine)).status == 200
    csrf = await csrf_of(client, mine)
    theirs = f"/console/projects/{b.project.id}/policy"
    assert (await client.get(theirs)).status == 403
    for url in (theirs, theirs + "/preview"):
        answer = await _post(client, url, csrf, pack_key="strict", strict="true")
        assert answer.status == 403, url
        assert b.marker not in await answer.text()
    assert not (await _stored(client, b.project.id)).policy_strict
