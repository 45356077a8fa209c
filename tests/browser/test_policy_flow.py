"""A project's policy in a real browser: pick a pack, require a section the planner does not write,
preview and save it, see the finding on the next run, then make it blocking in strict mode and see
the next run blocked by it."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from app.domain.policy import merge, policy_hash
from app.store import policy_packs
from app.web.keys import SERVICES
from tests.browser.conftest import Live, screenshot
from tests.browser.test_console_flow import sign_in

LIVE_SECONDS = 120_000  # ms: setup, planning and a step of the scripted agent, on a busy machine
SECTION = "Rollback"  # the scripted planner's plan.md is "# Plan" and one line: it has no such heading


async def _register(page: Page, live: Live) -> str:
    await page.click("text=Register a project")
    await page.fill("input[name=name]", "ledger")
    await page.fill("input[name=local_path]", str(live.repos.local))
    await page.click("button:has-text('Register and set up')")
    await expect(page).to_have_url(re.compile(r"/console/projects/\d+$"))
    await expect(page.locator("section.setup h2 .badge")).to_have_text("ready", timeout=LIVE_SECONDS)
    return page.url


async def _start_protocol(page: Page, project_url: str, title: str) -> None:
    await page.goto(project_url)
    await page.fill("input[name=title]", title)
    await page.click("button:has-text('Create protocol')")
    await expect(page).to_have_url(re.compile(r"/console/protocols/\d+$"))


async def test_a_section_required_on_the_policy_page_is_a_finding_then_blocks_in_strict_mode(live, page):
    async with live.app[SERVICES].database.read() as conn:
        default = (await policy_packs.get(conn, "default", "1.0")).pack
    expected = policy_hash(merge(default, {"plan": {"required_sections": [SECTION]}})[0])
    await sign_in(page, live)
    project_url = await _register(page, live)

    await page.click("a[href$='/policy']")
    await expect(page).to_have_url(project_url + "/policy")
    preview = page.locator("#preview")
    await expect(preview).to_contain_text("Saved policy")
    before = await preview.locator("code.hash").text_content()
    assert before == policy_hash(merge(default)[0])

    # Pick default@1.0, require the section, preview: the effective policy and its hash change, unsaved.
    await page.check("input[name=pack_key][value=default]")
    await page.select_option("select[name='pack_version.default']", "1.0")
    await page.fill("textarea[name='plan.required_sections']", SECTION)
    await page.click("button[data-action=Preview]")
    await expect(preview).to_contain_text("Preview, not saved")
    await expect(preview.locator("code.hash")).to_have_text(expected)
    await expect(preview.locator("code.pack")).to_have_text("default@1.0")
    await expect(preview.locator("pre.policy-json")).to_contain_text(f'"{SECTION}"')
    await screenshot(page, "policy-01-preview")
    await page.click("button[data-action=Save]")
    await expect(page).to_have_url(project_url + "/policy?saved=1")
    await expect(page.locator("#policy-notice")).to_have_text("policy saved")
    await expect(preview).to_contain_text("Saved policy")
    await expect(preview.locator("code.hash")).to_have_text(expected)
    await expect(page.locator("textarea[name='plan.required_sections']")).to_have_value(SECTION)

    # The next run is planned without the section: a warning finding, the run goes on.
    await _start_protocol(page, project_url, "First run")
    await expect(page.locator("#steps tr[data-step-id]")).to_have_count(2, timeout=LIVE_SECONDS)
    await page.reload()
    findings = page.locator("#findings")
    await expect(findings).to_contain_text("plan.missing_section")
    await expect(findings).to_contain_text(SECTION)
    await screenshot(page, "policy-02-finding")

    # Strict mode, with that finding blocking: the next run is blocked after planning, and says why.
    await page.goto(project_url + "/policy")
    await page.check("input[name=strict]")
    await page.fill("textarea[name='findings.blocking']", "plan.missing_section")
    await page.click("button[data-action=Save]")
    await expect(page.locator("#policy-notice")).to_have_text("policy saved")
    await expect(page.locator("input[name=strict]")).to_be_checked()
    await _start_protocol(page, project_url, "Second run")
    await expect(page.locator("#live h1 .badge")).to_have_text("blocked", timeout=LIVE_SECONDS)
    reason = page.locator("#live dl.facts dd.error-text")
    await expect(reason).to_contain_text("policy finding plan.missing_section: ")
    await expect(reason).to_contain_text(SECTION)
    await expect(page.locator("#steps tr[data-step-id]")).to_have_count(0)
    await screenshot(page, "policy-03-blocked")
    assert page.dialogs == []  # type: ignore[attr-defined]
