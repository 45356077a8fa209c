"""The "Policy findings" panel of protocol and step pages: grouped by scope, with suggested fixes,
escaped, and recorded once however often a subject is evaluated."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.domain.findings import finding
from app.domain.records import ProjectStatus
from app.domain.statuses import ProtocolStatus
from app.services import planning
from app.services.findings import FINDING_EVENT, MAX_RECORDED, record_findings, record_policy_problems
from app.store import events, steps
from app.store import projects as project_store
from app.store.transitions import move_protocol
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import sign_in

TOKEN = "console-token-0123456789"


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    return await aiohttp_client(create_app(settings, database_url))


async def test_findings_are_shown_by_scope_with_their_fixes_and_recorded_once(client):
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="demo", local_path="/srv/repos/demo")
        await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    run = await planning.create_protocol(svc, project.id, title="Tidy up")
    plan_finding = finding("plan.missing_section", "plan.md has no 'Risks' section", section="Risks")
    step_finding = finding(
        "step.forbidden_path_touched", "changed <b>secrets/x</b>", path="secrets/x", pattern="secrets/**"
    )
    async with svc.database.transaction() as conn:
        for target in (ProtocolStatus.PLANNING, ProtocolStatus.PLANNED, ProtocolStatus.RUNNING):
            run = await move_protocol(conn, run.id, target, expected_version=run.version)
        (step,) = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "p", "step_file": "01-p.md"}]
        )
        for _ in range(2):  # evaluated twice: recorded once
            await record_findings(conn, project.id, [plan_finding], run_id=run.id)
            await record_findings(conn, project.id, [step_finding], step=step)
        recorded = await events.recent(conn, protocol_run_id=run.id, type_prefix=FINDING_EVENT)
    assert len(recorded) == 2

    await sign_in(client, TOKEN)
    page = await (await client.get(f"/console/protocols/{run.id}")).text()
    panel = page[page.index("Policy findings") :]
    assert panel.index("<h3>Planning</h3>") < panel.index("<h3>Execution</h3>")
    assert "plan.missing_section" in panel
    assert "Suggested fix: Add a `## Risks` section to plan.md" in panel
    assert "changed &lt;b&gt;secrets/x&lt;/b&gt;" in panel
    step_page = await (await client.get(f"/console/steps/{step.id}")).text()
    step_panel = step_page[step_page.index("Policy findings") :]
    assert "step.forbidden_path_touched" in step_panel
    assert "plan.missing_section" not in step_panel

    changed = finding("plan.missing_section", "plan.md has no 'Goal' section", section="Goal")
    async with svc.database.transaction() as conn:
        assert await record_findings(conn, project.id, [plan_finding, changed], run_id=run.id) == [changed]


async def test_policy_merge_problems_become_findings_of_the_run_and_many_are_capped(client):
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="demo", local_path="/srv/repos/demo")
    run = await planning.create_protocol(svc, project.id, title="Tidy up")
    problems = [("policy.repo_local_invalid", "nested deeper than 20"), ("policy.override_refused", "locked")]
    many = [
        finding("step.artifact_missing", f"artifact a{i} is missing", artifact=f"a{i}")
        for i in range(MAX_RECORDED + 5)
    ]
    async with svc.database.transaction() as conn:
        assert [f.code for f in await record_policy_problems(conn, run, problems)] == [c for c, _ in problems]
        assert len(await record_findings(conn, project.id, many, run_id=run.id)) == MAX_RECORDED
        with pytest.raises(ValueError, match="not a policy finding code"):
            await record_policy_problems(conn, run, [("plan.missing_section", "x")])
