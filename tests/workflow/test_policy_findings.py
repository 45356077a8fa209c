"""Policy findings end to end: the real worker plans with the scripted agent under a pack whose
required plan sections the plan lacks; the findings reach the API and the console; in strict mode
the same plan blocks the run with the finding as the reason."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import insert, update

from app.services import controls, planning, projects
from app.store import protocols, steps
from app.store.tables import policy_packs
from app.store.tables import projects as project_rows
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import sign_in
from tests.support.workflow import (
    make_repos,
    project_ready,
    run_status,
    shared_with_agents,
    wait_for,
    workflow_settings,
)

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The scripted plan's plan.md has only a "Plan" heading; its step files have "Goal".
PACK = {
    "plan": {"required_sections": ["Goal", "Risks"]},
    "steps": {"required_sections": ["Goal"]},
    "checks": {"required": ["pytest -q"]},
    "findings": {"blocking": ["plan.missing_section"]},
}


async def _start(database_url, aiohttp_client, tmp_path, *, strict: bool, pack=PACK):
    repos = make_repos(tmp_path)
    settings = workflow_settings(tmp_path, api_token=TOKEN)
    client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
    svc = client.app[SERVICES]
    project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
    await wait_for(lambda: project_ready(svc, project.id), what="setup")
    async with svc.database.transaction() as conn:
        await conn.execute(insert(policy_packs).values(key="team", version="1.0", name="Team", pack=pack))
        await conn.execute(
            update(project_rows)
            .where(project_rows.c.id == project.id)
            .values(policy_pack_key="team", policy_pack_version="1.0", policy_strict=strict)
        )
    run = await planning.create_protocol(svc, project.id, title="Two parts")
    await planning.start_protocol(svc, run.id)
    return client, svc, run


async def _codes(client, path: str) -> list[str]:
    response = await client.get(path, headers=AUTH)
    assert response.status == 200, await response.text()
    return [item["finding"]["code"] for item in (await response.json())["items"]]


async def test_a_plan_missing_a_required_section_is_a_finding_in_api_and_console(
    database_url, aiohttp_client, tmp_path, monkeypatch
):
    prompts = shared_with_agents(tmp_path / "prompts.jsonl")
    monkeypatch.setenv("AGENT_PROMPT_LOG", str(prompts))
    client, svc, run = await _start(database_url, aiohttp_client, tmp_path, strict=False)

    async def completed():
        return await run_status(svc, run.id) == "completed"

    await wait_for(completed, seconds=120, what="completion despite warnings")
    planning = next(json.loads(line) for line in prompts.read_text().splitlines() if '"planning"' in line)
    assert "plan.md must have these sections, each as a `##` heading: `Goal`, `Risks`." in planning["prompt"]
    assert "these checks: `pytest -q`" in planning["prompt"]
    found = await (await client.get(f"/protocols/{run.id}/policy/findings", headers=AUTH)).json()
    on_run = [i["finding"] for i in found["items"] if i["step_run_id"] is None]
    assert [(f["code"], f["metadata"]) for f in on_run] == [
        ("plan.missing_section", {"section": "Goal"}),
        ("plan.missing_section", {"section": "Risks"}),
    ]
    assert on_run[0]["scope"] == "planning"
    assert on_run[0]["severity"] == "warning"
    async with svc.database.read() as conn:
        first, second = await steps.list_for_protocol(conn, run.id)
    # The scripted agent runs no command: the required check is never seen, on each step, once.
    assert await _codes(client, f"/steps/{first.id}/policy/findings") == ["step.required_check_not_seen"]
    project_codes = await _codes(client, f"/projects/{run.project_id}/policy/findings")
    assert project_codes.count("plan.missing_section") == 2
    assert project_codes.count("step.required_check_not_seen") == 2
    # Set up under the seeded default pack (no checks, no test command known): onboarding warned.
    assert project_codes[0] == "onboarding.no_test_command"

    await sign_in(client, TOKEN)
    page = await (await client.get(f"/console/protocols/{run.id}")).text()
    panel = page[page.index("Policy findings") :]
    assert "plan.missing_section" in panel
    assert "Add a `## Risks` section to plan.md" in panel
    step_page = await (await client.get(f"/console/steps/{second.id}")).text()
    assert "step.required_check_not_seen" in step_page[step_page.index("Policy findings") :]


async def test_in_strict_mode_the_same_plan_blocks_the_run_with_the_finding_as_reason(
    database_url, aiohttp_client, tmp_path
):
    client, svc, run = await _start(database_url, aiohttp_client, tmp_path, strict=True)

    async def blocked():
        return await run_status(svc, run.id) == "blocked"

    await wait_for(blocked, seconds=120, what="the run blocked by policy")
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run.id)
        assert await steps.list_for_protocol(conn, run.id) == []
    assert run.last_error == "policy finding plan.missing_section: plan.md has no 'Goal' section"
    assert await _codes(client, f"/protocols/{run.id}/policy/findings") == [
        "plan.missing_section",
        "plan.missing_section",
    ]
    events = await (
        await client.get(f"/protocols/{run.id}/events?type=protocol.blocked", headers=AUTH)
    ).json()
    assert [e["payload"]["reason"] for e in events["items"]] == [run.last_error]

    # Strict mode off, started again: the committed plan is evaluated again, warns (once), and runs.
    async with svc.database.transaction() as conn:
        await conn.execute(
            update(project_rows).where(project_rows.c.id == run.project_id).values(policy_strict=False)
        )
    await planning.start_protocol(svc, run.id)

    async def completed():
        return await run_status(svc, run.id) == "completed"

    await wait_for(completed, seconds=120, what="completion once strict mode is off")
    on_run = await client.get(f"/protocols/{run.id}/policy/findings", headers=AUTH)
    codes = [i["finding"]["code"] for i in (await on_run.json())["items"] if i["step_run_id"] is None]
    assert codes == ["plan.missing_section", "plan.missing_section"]


async def test_in_strict_mode_a_forbidden_path_blocks_the_step_after_its_agent_and_before_qa(
    database_url, aiohttp_client, tmp_path
):
    pack = {"paths": {"forbidden": ["work/02.*"]}, "findings": {"blocking": ["step.forbidden_path_touched"]}}
    client, svc, run = await _start(database_url, aiohttp_client, tmp_path, strict=True, pack=pack)

    async def blocked():
        return await run_status(svc, run.id) == "blocked"

    await wait_for(blocked, seconds=120, what="the run blocked by policy")
    async with svc.database.read() as conn:
        first, second = await steps.list_for_protocol(conn, run.id)
        run = await protocols.get(conn, run.id)
    reason = (
        "policy finding step.forbidden_path_touched: the step changed work/02.txt, "
        "which the policy forbids (work/02.*)"
    )
    assert (first.status.value, second.status.value) == ("completed", "blocked")
    assert (second.last_error, run.last_error) == (reason, reason)
    runs = await (await client.get(f"/steps/{second.id}/agent_runs", headers=AUTH)).json()
    assert [r["stage"] for r in runs["items"]] == ["execution"]  # QA never saw it
    assert await _codes(client, f"/steps/{second.id}/policy/findings") == ["step.forbidden_path_touched"]


async def test_in_strict_mode_a_step_file_finding_blocks_before_any_agent_runs(
    database_url, aiohttp_client, tmp_path, monkeypatch
):
    """Strict mode comes on after planning: the retried step is blocked before its agent starts."""
    pack = {"steps": {"required_sections": ["Objective"]}, "findings": {"blocking": ["step.missing_section"]}}
    monkeypatch.setenv("AGENT_FAIL_STAGE", "execution")  # step 1 stops, so that strict mode can come on
    client, svc, run = await _start(database_url, aiohttp_client, tmp_path, strict=False, pack=pack)

    async def blocked():
        return await run_status(svc, run.id) == "blocked"

    await wait_for(blocked, seconds=120, what="the run blocked by its failing agent")
    async with svc.database.transaction() as conn:
        first = (await steps.list_for_protocol(conn, run.id))[0]
        await conn.execute(
            update(project_rows).where(project_rows.c.id == run.project_id).values(policy_strict=True)
        )
    tried = len((await (await client.get(f"/steps/{first.id}/agent_runs", headers=AUTH)).json())["items"])
    await controls.retry_step(svc, first.id)

    async def blocked_by_policy():
        async with svc.database.read() as conn:
            step = await steps.get(conn, first.id)
        return step.status.value == "blocked" and (step.last_error or "").startswith("policy finding")

    await wait_for(blocked_by_policy, seconds=120, what="the step blocked by policy")
    async with svc.database.read() as conn:
        step = await steps.get(conn, first.id)
    assert step.last_error == "policy finding step.missing_section: 01-part-1.md has no 'Objective' section"
    assert await run_status(svc, run.id) == "blocked"
    runs = (await (await client.get(f"/steps/{first.id}/agent_runs", headers=AUTH)).json())["items"]
    assert len(runs) == tried  # no agent ran for the retry
    assert await _codes(client, f"/steps/{first.id}/policy/findings") == ["step.missing_section"]


@pytest.mark.parametrize("path", ["/protocols/{}/policy/findings", "/steps/{}/policy/findings"])
async def test_findings_of_what_does_not_exist_or_bad_cursors_are_4xx(
    database_url, aiohttp_client, tmp_path, path
):
    settings = workflow_settings(tmp_path, api_token=TOKEN, run_worker=False)
    client = await aiohttp_client(create_app(settings, database_url, environ=dict(os.environ)))
    assert (await client.get(path.format(999999), headers=AUTH)).status == 404
    bad = await client.get("/projects/1/policy/findings?cursor=%%%", headers=AUTH)
    assert bad.status in (404, 422)
