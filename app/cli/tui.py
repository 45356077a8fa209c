"""`tasksgodzilla tui`: the terminal client, on a running service's HTTP API (Textual is imported only
when this command runs, so the other commands do not pay for it)."""

from __future__ import annotations

import asyncio

import click

from app.cli.common import forget_environment, reports_errors
from app.config import Settings, load_settings


@click.command()
@click.option(
    "--server",
    metavar="URL",
    help="The service's base URL [TASKSGODZILLA_API_BASE; else http://127.0.0.1:<TASKSGODZILLA_PORT>].",
)
@reports_errors
def tui(server: str | None) -> None:
    """Browse projects and runs, follow their events and act on them, in the terminal (keys in the
    footer). The token is read from TASKSGODZILLA_API_TOKEN, never from the command line."""
    settings = load_settings()
    forget_environment()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    from app.tui.app import run_tui

    asyncio.run(run_tui(server_url(server, settings), token))


def server_url(given: str | None, settings: Settings) -> str:
    """--server, else TASKSGODZILLA_API_BASE, else this machine's `serve` on its configured port."""
    return given or settings.api_base or f"http://127.0.0.1:{settings.port}"
