"""A live server (real port, worker, git, scripted agent) and a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from app.web.app import create_app
from tests.support.browser import install_chromium
from tests.support.workflow import Repos, make_repos, workflow_settings

TOKEN = "browser-token-0123456789"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class Live:
    base: str
    repos: Repos
    app: web.Application


@pytest.fixture
async def live(database_url, tmp_path, monkeypatch) -> AsyncIterator[Live]:
    """The application as `serve` runs it, on 127.0.0.1, with a worker; QA fails step 2."""
    repos = make_repos(tmp_path)
    monkeypatch.setenv("AGENT_QA_FAIL", "2")
    settings = workflow_settings(tmp_path, api_token=TOKEN)
    app = create_app(settings, database_url, environ=dict(os.environ))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Live(f"http://{host}:{port}", repos, app)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def chromium() -> Path:
    return install_chromium()


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page that records every dialog (none may open: an alert would be injected script)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    opened.dialogs = []  # type: ignore[attr-defined]

    async def dismiss(dialog):
        opened.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        await dialog.dismiss()

    opened.on("dialog", dismiss)
    try:
        yield opened
    finally:
        await context.close()


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
