"""The job app Procrastinate's own command line runs: `procrastinate --app=app.jobs.app worker`.

The same tasks, settings and services as `tasksgodzilla worker`, built when the command line asks
for `app.jobs.app` (the package's module `__getattr__`), never on a plain import. It needs
TASKSGODZILLA_DATABASE_URL (no embedded server here) and a migrated schema (`tasksgodzilla migrate`).
`tasksgodzilla worker` remains the one to prefer: it also restarts its Procrastinate workers after a
database outage and gives the periodic duties their own queue and concurrency.
"""

from __future__ import annotations

import procrastinate
from procrastinate.app import WorkerOptions

from app.cli.common import reports_errors, settings_for_command
from app.errors import ConfigError
from app.jobs.duties import DUTY_QUEUE, duties
from app.jobs.queue import ProcrastinateQueue
from app.jobs.runtime import autocommit, create_job_app, listened_queues
from app.jobs.tasks import SERVICES_KEY
from app.services.context import build_services
from app.store.database import Database


@reports_errors  # a missing or invalid setting: one line and a non-zero exit, as our own commands do
def standalone_app() -> procrastinate.App:
    """A job app whose workers get the services in their context, as `tasksgodzilla worker`'s do."""
    settings = settings_for_command()  # our variables then leave the environment agents inherit
    if settings.database_url is None:
        raise ConfigError(
            "TASKSGODZILLA_DATABASE_URL is not set: Procrastinate's worker needs a database server "
            "(`tasksgodzilla worker` can start an embedded one)"
        )
    url = settings.database_url.get_secret_value()
    periodic = len(duties(settings.scheduler_interval_seconds))
    app = create_job_app(
        settings, url, configure=autocommit, max_size=settings.worker_concurrency + periodic + 4
    )
    services = build_services(
        settings, Database(url, pool_size=settings.db_pool_size), ProcrastinateQueue(app)
    )
    defaults: WorkerOptions = {
        "additional_context": {SERVICES_KEY: services},
        "queues": [*listened_queues(settings), DUTY_QUEUE],  # never another machine's queue
        "concurrency": settings.worker_concurrency + periodic,
        "update_heartbeat_interval": settings.worker_heartbeat_seconds,
        "stalled_worker_timeout": settings.stalled_after_seconds,
        "listen_notify": True,
        "fetch_job_polling_interval": settings.worker_poll_seconds,
    }
    app.worker_defaults.update(defaults)
    return app
