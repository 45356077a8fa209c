"""What every command shares: error reporting, settings, and a session on the database (with a worker).

A session provisions the database (TASKSGODZILLA_DATABASE_URL or the embedded server), migrates it
when TASKSGODZILLA_MIGRATE_ON_START is true, opens the job runtime, and, for commands that wait,
runs a job worker in the same event loop. Jobs live in Postgres, so that worker is just one more:
beside a running `serve` or `tasksgodzilla worker` it adds capacity, alone it does all the work.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import procrastinate

from app.acting import acting_as
from app.cli.remote import refuse_remote, remote_of
from app.cli.scrub import wipe_from_environ_block
from app.config import Settings, load_settings
from app.config_display import mask_url
from app.config_environment import forget_our_variables
from app.domain.actors import cli_actor
from app.domain.text import printable
from app.errors import TasksGodzillaError, UnavailableError, spec_for
from app.jobs.runtime import open_runtime, start_worker, stop_worker
from app.logs import configure_logging, get_logger
from app.services.context import Services
from app.store.provision import provision_database

log = get_logger("app.cli")
_SAID: set[str] = set()  # which database this process said it opened
T = TypeVar("T")


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into one line on stderr and the table's exit code; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TasksGodzillaError as exc:
            click.echo(f"error: {printable(exc.message)}", err=True)
            sys.exit(spec_for(exc).exit_code)
        except click.ClickException:
            raise  # a usage error: click prints it and exits 2
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`… | head`): stop quietly, as a process killed by SIGPIPE would.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)
        except asyncio.CancelledError:
            # Only SIGTERM cancels a session from outside (see _session): exit as if killed by it.
            click.echo("terminated", err=True)
            sys.exit(128 + signal.SIGTERM)
        except Exception as exc:
            # A bug, not a user error: the log keeps the traceback, the terminal gets one line.
            log.exception("unexpected error")
            click.echo(f"error: internal error ({type(exc).__name__}); see the log above", err=True)
            sys.exit(spec_for(exc).exit_code)

    return wrapper


def settings_for_command() -> Settings:
    settings = load_settings()
    forget_environment()
    configure_logging(settings)
    return settings


def forget_environment() -> None:
    """Once the settings are read: none of our variables stays in this process's environment (no child
    inherits one) nor in the block /proc/<pid>/environ shows (a process of the same user could read it)."""
    wipe_from_environ_block(forget_our_variables())


def operator_settings() -> Settings:
    """Settings for the project/protocol commands: quiet logs (warnings up) unless a level was set;
    a lower level set is written to a log file (said once), stderr keeping warnings and up."""
    settings = load_settings()
    forget_environment()
    if "log_level" not in settings.model_fields_set:
        # Their output is the progress itself; INFO lines from the worker would drown it.
        settings = settings.model_copy(update={"log_level": "WARNING"})
    configure_logging(settings)
    if logging.getLogger().level < logging.WARNING and remote_of(settings) is None:
        _chatty_logs_to_file(settings.data_dir / "logs" / "cli.log")
    return settings


def _chatty_logs_to_file(path: Path) -> None:
    """Log lines below warnings go to `path`: between the progress lines they would interleave with
    the feed (the in-process worker logs each job)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    to_file = logging.FileHandler(path, encoding="utf-8")
    for handler in root.handlers:
        to_file.setFormatter(handler.formatter)
        handler.setLevel(logging.WARNING)
    root.addHandler(to_file)
    click.echo(f"logs below WARNING go to {path}", err=True)


def wants_worker(settings: Settings, flag: bool | None) -> bool:
    """`--worker/--no-worker` when given, else TASKSGODZILLA_RUN_WORKER."""
    return settings.run_worker if flag is None else flag


worker_option = click.option(
    "--worker/--no-worker",
    "worker",
    default=None,
    help="Run a job worker in this process while waiting [TASKSGODZILLA_RUN_WORKER, default on].",
)


class Session:
    """The services of one command, and its in-process worker once it starts waiting (when it runs one)."""

    def __init__(self, services: Services, job_app: procrastinate.App, *, worker: bool) -> None:
        self.services = services
        self._job_app = job_app
        self._wants_worker = worker
        self.worker: asyncio.Task[None] | None = None

    def start_worker(self) -> None:
        """Start the worker, once. Called after the command's own writes: a worker started before
        them may miss their wake-up (it listens only once running) and find the job a poll later."""
        if self._wants_worker and self.worker is None:
            name = f"{socket.gethostname()}-cli-{os.getpid()}"
            with acting_as(None):  # its task keeps this context: jobs act for no one
                self.worker = start_worker(self._job_app, self.services, name=name)

    def check_worker(self) -> None:
        """Raise UnavailableError when our worker has died (waiting on would wait forever)."""
        if self.worker is None or not self.worker.done():
            return
        error = None if self.worker.cancelled() else self.worker.exception()
        problem = f" ({type(error).__name__})" if error is not None else ""
        raise UnavailableError(f"the in-process job worker stopped{problem}; see the log")


def run_session(settings: Settings, action: Callable[[Session], Awaitable[T]], *, worker: bool = False) -> T:
    """Provision and migrate the database, then run `action` in a session (with a worker when asked).
    Refused in remote mode: a command that got here has no remote form yet."""
    if (remote := remote_of(settings)) is not None:
        refuse_remote(remote)
    # Said before opening it, once: a second terminal without the server's settings opens another
    # database (`project edit --setup` opens one twice).
    if (said := f"local mode: {database_description(settings)}") not in _SAID:
        click.echo(said, err=True)
        _SAID.add(said)
    with provision_database(settings) as url:
        if settings.migrate_on_start:
            from app.store import migrate  # Alembic costs a tenth of a second to import: only when used

            migrate.upgrade(url)
        return asyncio.run(_session(settings, url, action, worker))


async def _session(
    settings: Settings, url: str, action: Callable[[Session], Awaitable[T]], worker: bool
) -> T:
    main = asyncio.current_task()
    assert main is not None
    # SIGTERM stops a command as Ctrl-C does: the worker lets its running jobs finish.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    async with open_runtime(settings, url) as (job_app, services):
        session = Session(services, job_app, worker=worker)
        try:
            with acting_as(cli_actor(os_user())):  # the command's own writes name who ran it
                return await action(session)
        except asyncio.CancelledError:
            if session.worker is not None:
                # Ctrl-C: a job cut short is retried elsewhere, but only once it counts as stalled.
                click.echo(
                    "\nstopping: letting running jobs finish (Ctrl-C again leaves them to another worker)",
                    err=True,
                )
            raise
        finally:
            if session.worker is not None:
                await stop_worker(session.worker)


def database_description(settings: Settings) -> str:
    """Which database a local command opens, without its password."""
    if settings.database_url is None:
        return f"embedded database under {settings.embedded_pgdata}"
    return f"database {mask_url(settings.database_url.get_secret_value())}"


def os_user() -> str:
    """Who runs this command, as the operating system names them."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment nor the password database
        return "operator"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, the headers first."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
