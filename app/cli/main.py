"""The `tasksgodzilla` command line: thin commands over the library, exit codes from the error table."""

from __future__ import annotations

import json

import click

from app import __version__
from app.cli.audit import audit
from app.cli.budgets import budget
from app.cli.common import forget_environment, reports_errors, settings_for_command
from app.cli.evals import evaluate
from app.cli.notify import notify
from app.cli.organisations import org
from app.cli.policy import policy
from app.cli.projects import project
from app.cli.protocols import protocol
from app.cli.remote import SERVER
from app.cli.schedules import schedule
from app.cli.tui import tui
from app.cli.usage import usage
from app.config import load_settings
from app.config_display import masked_settings, settings_reference
from app.logs import configure_logging

__all__ = ["cli", "main", "reports_errors", "settings_for_command"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tasksgodzilla")
@click.option(
    "--server",
    metavar="URL",
    help="Act through this running service's HTTP API (token: TASKSGODZILLA_API_TOKEN) "
    "[TASKSGODZILLA_API_BASE; unset: local mode, on the database of this machine's settings].",
)
@click.pass_context
def cli(context: click.Context, server: str | None) -> None:
    """TasksGodzilla: orchestrate AI coding agents over git repositories."""
    context.meta[SERVER] = server


@cli.command()
@click.option("--host", help="Address to listen on [TASKSGODZILLA_HOST].")
@click.option("--port", type=int, help="Port to listen on [TASKSGODZILLA_PORT].")
@click.option(
    "--migrate/--no-migrate", default=None, help="Apply migrations first [TASKSGODZILLA_MIGRATE_ON_START]."
)
@reports_errors
def serve(host: str | None, port: int | None, migrate: bool | None) -> None:
    """Run the API and console (on an embedded PostgreSQL when no database URL is set)."""
    from app.cli.serve import run_server

    overrides = {
        k: v for k, v in {"host": host, "port": port, "migrate_on_start": migrate}.items() if v is not None
    }
    settings = load_settings(**overrides)
    forget_environment()
    configure_logging(settings)
    run_server(settings)


@cli.command()
@click.option("--name", help="Worker name shown in the queue (default: host name).")
@reports_errors
def worker(name: str | None) -> None:
    """Run a job worker (and the periodic scans) against the configured database."""
    from app.cli.serve import run_worker_process

    run_worker_process(settings_for_command(), name=name)


@cli.command()
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
@reports_errors
def migrate(revision: str) -> None:
    """Upgrade the database schema (ours and the job queue's)."""
    from app.store import migrate as migrations
    from app.store.provision import provision_database

    settings = settings_for_command()
    with provision_database(settings) as url:
        migrations.upgrade(url, revision)
    click.echo(f"database at revision {migrations.head_revision() if revision == 'head' else revision}")


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.option("--reference", is_flag=True, help="Print every setting's default and meaning (Markdown).")
@reports_errors
def show_config(as_json: bool, reference: bool) -> None:
    """Print the effective settings, secrets masked."""
    if reference:
        click.echo(settings_reference())
        return
    shown = masked_settings(load_settings())
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        click.echo(f"{name.ljust(width)}  {value}")


cli.add_command(org)
cli.add_command(project)
cli.add_command(protocol)
cli.add_command(policy)
cli.add_command(budget)
cli.add_command(audit)
cli.add_command(tui)
cli.add_command(evaluate)
cli.add_command(usage)
cli.add_command(notify)
cli.add_command(schedule)


def main() -> None:
    cli(prog_name="tasksgodzilla")
