"""The console in a real browser against a live server: onboard, plan, watch it run, approve, complete."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from app.domain.records import AgentRunStatus, ProjectStatus, Stage
from app.services import planning
from app.store import agent_runs, steps
from app.store import projects as project_store
from app.web.keys import SERVICES
from tests.browser.conftest import TOKEN, Live, screenshot

LIVE_SECONDS = 60_000  # ms: a step of the scripted agent takes a second or two


async def sign_in(page: Page, live: Live) -> None:
    await page.goto(live.base + "/")
    await expect(page).to_have_url(live.base + "/console/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(live.base + "/console/")


async def test_operator_runs_a_protocol_from_onboarding_to_completion(live, page):
    await page.goto(live.base + "/console/login")
    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    await screenshot(page, "01-login")
    await sign_in(page, live)

    # Onboard a project through the form; its setup finishes while we watch (no reload).
    await page.click("text=Register a project")
    await page.fill("input[name=name]", "shop")
    await page.fill("input[name=local_path]", str(live.repos.local))
    await page.select_option("select[name=ci_provider]", "github")
    await screenshot(page, "02-onboarding")
    await page.click("button:has-text('Register and set up')")
    await expect(page).to_have_url(re.compile(r"/console/projects/\d+$"))
    await page.evaluate("window.notReloaded = true")
    await expect(page.locator("section.setup h2 .badge")).to_have_text("ready", timeout=LIVE_SECONDS)
    assert await page.evaluate("window.notReloaded === true"), "the badge changed without a reload"
    await screenshot(page, "03-project")

    # Create and start a protocol; its steps appear and progress live.
    await page.fill("input[name=title]", "Write two parts")
    await page.click("button:has-text('Create protocol')")
    await expect(page).to_have_url(re.compile(r"/console/protocols/\d+$"))
    await page.evaluate("window.notReloaded = true")
    rows = page.locator("#steps tr[data-step-id]")
    await expect(rows).to_have_count(2, timeout=LIVE_SECONDS)
    await expect(rows.nth(0).locator(".badge")).to_have_text("completed", timeout=LIVE_SECONDS)
    await expect(page.locator("#live h1 .badge")).to_have_text("blocked", timeout=LIVE_SECONDS)
    await expect(rows.nth(1).locator(".badge")).to_have_text("failed")
    await expect(page.locator("#feed")).to_contain_text("QA fail", timeout=LIVE_SECONDS)
    await expect(page.locator(".plan .markdown h1")).to_have_text("Plan")
    assert await page.evaluate("window.notReloaded === true"), "the timeline changed without a reload"
    await screenshot(page, "04-protocol-blocked")
    protocol_url = page.url

    # While a step needs a person, neither resuming nor planning again is offered (planning again
    # would build over the run's own commits): only what the operator rules allow is a button.
    for refused in ("Resume", "Start", "Run next step"):
        await expect(page.locator(f"button[data-action='{refused}']")).to_have_count(0)
    await expect(page.locator("button[data-action=Cancel]")).to_have_count(1)

    # The failed step: its agent runs, log and QA report; approve it from there.
    await rows.nth(1).locator("a").click()
    await expect(page).to_have_url(re.compile(r"/console/steps/\d+$"))
    await expect(page.locator("#agent-runs tbody tr")).to_have_count(2)
    await expect(page.locator("pre.log").last).to_contain_text("step 02: fail")
    await expect(page.locator("section.card h2", has_text="QA report")).to_contain_text("fail")
    await screenshot(page, "05-step-failed")
    await page.evaluate("window.notReloaded = true")
    await page.click("button[data-action=Approve]")
    await expect(page.locator("#flash")).to_contain_text("Approve: done")
    await expect(page.locator("#live h1 .badge")).to_have_text("completed", timeout=LIVE_SECONDS)
    assert await page.evaluate("window.notReloaded === true")
    await screenshot(page, "06-step-approved")

    await expect(page.locator("button[data-action=Approve]")).to_have_count(0)

    await page.goto(protocol_url)
    await expect(page.locator("#live h1 .badge")).to_have_text("completed", timeout=LIVE_SECONDS)
    await screenshot(page, "07-protocol-completed")

    await page.click("header >> text=Activity")
    await expect(page.locator("#feed li").first).to_be_visible()
    await expect(page.locator("#feed")).to_contain_text("protocol.completed")
    await screenshot(page, "08-activity")

    await page.goto(live.base + "/console/")
    await expect(page.locator("tr", has_text="shop")).to_contain_text("completed")
    await screenshot(page, "09-projects")
    await page.click("text=shop")
    await page.click("text=Branches")
    await expect(page.locator("table.grid")).to_contain_text("0001-write-two-parts")
    await screenshot(page, "10-branches")
    assert page.dialogs == []  # type: ignore[attr-defined]


async def test_hostile_text_stays_text_csrf_is_enforced_and_sign_out_works(live, page):
    svc = live.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="evil", local_path=str(live.repos.local))
        await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    run = await planning.create_protocol(
        svc, project.id, title="<img src=x onerror=alert(1)> <script>alert(2)</script>"
    )
    async with svc.database.transaction() as conn:
        (step,) = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "<b>x</b>", "step_file": "01-x.md"}]
        )
        agent = await agent_runs.start(
            conn, project_id=project.id, protocol_run_id=run.id, step_run_id=step.id,
            stage=Stage.EXECUTION, engine="command", model=None, prompt_version=None,
        )  # fmt: skip
        await agent_runs.finish(conn, agent.id, status=AgentRunStatus.FAILED)
        await agent_runs.store_log(
            conn,
            agent.id,
            "\x1b[31mboom\x1b[0m <script>alert(3)</script><img src=x onerror=alert(4)>",
            truncated=False,
        )
    await sign_in(page, live)
    await page.goto(f"{live.base}/console/protocols/{run.id}")
    await expect(page.locator("#live h1")).to_contain_text("<script>alert(2)</script>")
    await page.goto(f"{live.base}/console/steps/{step.id}")
    log = page.locator("pre.log")
    await expect(log).to_have_text("boom <script>alert(3)</script><img src=x onerror=alert(4)>")
    assert await page.locator("pre.log img, pre.log script").count() == 0
    await screenshot(page, "11-step-hostile-log")

    refused = await page.request.post(
        f"{live.base}/console/steps/{step.id}/actions/approve", form={"note": "x"}
    )
    assert refused.status == 403, "a POST without the CSRF token is refused"
    async with svc.database.read() as conn:
        assert (await steps.get(conn, step.id)).status == "pending"

    await page.click("button:has-text('Sign out')")
    await expect(page).to_have_url(live.base + "/console/login")
    await page.goto(live.base + "/console/")
    await expect(page).to_have_url(live.base + "/console/login")
    assert page.dialogs == []  # type: ignore[attr-defined]
