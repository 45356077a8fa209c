"""The usage charts in a real browser: seeded usage drawn as SVG on the project and protocol pages,
one point per day or step, each with its hover text, and a screenshot of each page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from app.domain.records import ProjectStatus
from app.services import planning
from app.store import projects as project_store
from app.store import steps
from app.web.keys import SERVICES
from tests.browser.test_console_flow import sign_in
from tests.support.usage_seed import seed_usage

PNG = b"\x89PNG\r\n\x1a\n"


async def _shot(page: Page, path) -> None:
    await page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG), "a PNG file"
    assert len(data) > 1000, "not an empty picture"


async def test_usage_charts_are_drawn_on_the_project_and_protocol_pages(live, page, tmp_path):
    svc = live.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="shop", local_path=str(live.repos.local))
        await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    run = await planning.create_protocol(svc, project.id, title="Write <two> parts")
    async with svc.database.transaction() as conn:
        plan = await steps.create_many(
            conn,
            run.id,
            [
                {"step_index": 1, "name": "part <one>", "step_file": "01.md"},
                {"step_index": 2, "name": "part two", "step_file": "02.md"},
            ],
        )
    await seed_usage(svc.database, run, plan, day_1=datetime.now(UTC) - timedelta(days=3))
    await sign_in(page, live)

    await page.goto(f"{live.base}/console/projects/{project.id}")
    charts = page.locator("#usage svg.chart")
    await expect(charts).to_have_count(3)
    await expect(charts.nth(0).locator(".point")).to_have_count(30)
    await expect(charts.nth(1).locator(".point")).to_have_count(30)
    await expect(charts.nth(2).locator(".point")).to_have_count(2)
    await expect(charts.nth(0)).to_have_attribute("role", "img")
    hovers = await charts.nth(0).locator(".point title").all_text_contents()
    assert sum("2 runs of unknown cost" in text for text in hovers) == 1, hovers
    await expect(page.locator("#usage table[data-group=engine] tbody tr")).to_have_count(2)
    await _shot(page, tmp_path / "project-usage.png")

    await page.goto(f"{live.base}/console/protocols/{run.id}")
    charts = page.locator("#usage svg.chart")
    await expect(charts).to_have_count(2)
    await expect(charts.nth(0).locator(".point")).to_have_count(2)
    await expect(charts.nth(1).locator(".point")).to_have_count(2)
    durations = await charts.nth(0).locator(".point title").all_text_contents()
    assert durations[0] == "step 1 part <one>: 5.0 s (4.0 s execution, 1.0 s QA)"
    await expect(page.locator("#usage")).to_contain_text("2 of 3 verdicts passed (67%)")
    await expect(page.locator("#usage-by-stage tr[data-stage=total]")).to_contain_text(
        "2 runs of unknown cost"
    )
    assert page.dialogs == []  # type: ignore[attr-defined]
    await _shot(page, tmp_path / "protocol-usage.png")
