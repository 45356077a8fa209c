"""The usage fragments of the project and protocol pages: totals, charts with one point per day or
step, each chart's figures as a table, unknown costs said as such, and every text escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.domain.records import ProjectStatus
from app.services import planning
from app.store import projects as project_store
from app.store import steps
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import sign_in
from tests.support.usage_seed import seed_usage

TOKEN = "console-token-0123456789"
POINT = re.compile(r'class="point"')


@pytest.fixture
async def seeded(database_url, aiohttp_client, tmp_path):
    settings = Settings(run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data")
    client = await aiohttp_client(create_app(settings, database_url))
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="demo", local_path="/srv/repos/demo")
        await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    run = await planning.create_protocol(svc, project.id, title="Tidy up")
    async with svc.database.transaction() as conn:
        plan = await steps.create_many(
            conn,
            run.id,
            [
                {"step_index": 1, "name": "<b>bold</b> & co", "step_file": "01.md"},
                {"step_index": 2, "name": "second", "step_file": "02.md"},
            ],
        )
    await seed_usage(svc.database, run, plan, day_1=datetime.now(UTC) - timedelta(days=3))
    await sign_in(client, TOKEN)
    return client, project, run


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, re.S)


async def test_the_project_usage_fragment_charts_days_and_queues(seeded) -> None:
    client, project, _ = seeded
    page = await client.get(f"/console/projects/{project.id}")
    assert f'hx-get="/console/projects/{project.id}/usage"' in await page.text()
    response = await client.get(f"/console/projects/{project.id}/usage")
    assert response.status == 200
    html = await response.text()
    cost, tokens, queues = _svgs(html)
    assert len(POINT.findall(cost)) == 30, "one point per day of the last 30, empty days included"
    assert len(POINT.findall(tokens)) == 30
    assert 'role="img"' in cost
    assert "aria-label=" in cost
    assert "2 runs of unknown cost" in cost, "a day's hover says what is not priced"
    assert len(POINT.findall(queues)) == 2, "one bar per queue this project's jobs go to"
    assert html.count("as a table</summary>") == 3
    assert html.count("<th>Day</th>") == 2
    assert "<th>Queue</th>" in html
    assert "$3 + 2 runs of unknown cost" in html
    assert 'data-group="model"' in html
    assert "(engine default)" in html


async def test_the_protocol_usage_fragment_has_stages_steps_and_qa(seeded) -> None:
    client, _, run = seeded
    page = await client.get(f"/console/protocols/{run.id}")
    assert f'hx-get="/console/protocols/{run.id}/usage"' in await page.text()
    html = await (await client.get(f"/console/protocols/{run.id}/usage")).text()
    planning_row = re.search(r'<tr data-stage="planning">.*?</tr>', html, re.S)
    assert planning_row
    assert "$0.5" in planning_row.group(0)
    qa_row = re.search(r'<tr data-stage="qa">.*?</tr>', html, re.S)
    assert qa_row
    assert "unknown" in qa_row.group(0)
    assert "$0<" not in qa_row.group(0)
    assert "2 of 3 verdicts passed (67%)" in html
    assert html.count("<th>Step</th>") == 2, "each chart's table names what its rows are"
    durations, rates = _svgs(html)
    assert len(POINT.findall(durations)) == 2
    assert len(POINT.findall(rates)) == 2
    assert "step 2 second: 9.0 s (8.0 s execution, 1.0 s QA)" in durations
    assert "1 of 2 verdicts passed (50%)" in rates
    assert "<b>bold" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;amp; co" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in durations


async def test_the_step_timeline_counts_unpriced_runs_apart(seeded) -> None:
    client, _, run = seeded
    html = await (await client.get(f"/console/protocols/{run.id}/live")).text()
    rows = re.findall(r"<tr data-step-id=.*?</tr>", html, re.S)
    assert len(rows) == 2
    for row in rows:  # execution priced, QA not: never shown as if QA were free
        assert "<td>2,900</td>" in row
        assert "<td>$1.25 + 1 run of unknown cost</td>" in row
