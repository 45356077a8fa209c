"""The generic trigger webhook: a signed POST creates a run in its project, once per delivery id.

Each project has its own secret (made here, shown once, kept encrypted with the other project
secrets); the body is signed with HMAC-SHA256 under it (`X-TasksGodzilla-Signature: sha256=<hex>`).
"""

from __future__ import annotations

import secrets as random

from app.domain.records import ProtocolRun
from app.errors import ConflictError
from app.services.context import Services
from app.services.credentials import box_of
from app.services.events import record
from app.services.spawn import spawn_run
from app.store import projects, protocols, secrets
from app.store import triggers as deliveries

TRIGGER_SECRET = "trigger_webhook_secret"  # noqa: S105 (the name it is stored under)


async def new_secret(svc: Services, project_id: int) -> str:
    """Make (or replace) the project's trigger secret; the only time it is shown."""
    secret = "tgw_" + random.token_urlsafe(32)
    async with svc.database.transaction() as conn:
        await projects.get(conn, project_id)
        await secrets.save(conn, project_id, TRIGGER_SECRET, box_of(svc).encrypt(secret))
        await record(
            conn,
            project_id,
            "trigger.secret_set",
            "trigger webhook secret made (the old one no longer works)",
        )
    return secret


async def secret_of(svc: Services, project_id: int) -> str | None:
    async with svc.database.read() as conn:
        stored = await secrets.load(conn, project_id, TRIGGER_SECRET)
    return box_of(svc).decrypt(stored) if stored is not None else None


async def trigger_run(
    svc: Services, project_id: int, *, delivery_id: str, title: str, description: str
) -> tuple[ProtocolRun, bool]:
    """The run this delivery created, and whether it is new (False: a replay, nothing changed)."""
    async with svc.database.transaction() as conn:
        if not await deliveries.claim(conn, project_id, delivery_id):
            earlier = await deliveries.run_of(conn, project_id, delivery_id)
            if earlier is None:
                raise ConflictError(f"delivery {delivery_id} was received before; its run is gone")
            return await protocols.get(conn, earlier), False
        run = await spawn_run(
            conn,
            svc,
            project_id,
            title=title,
            description=description,
            source="trigger",
            delivery=delivery_id,
        )
        await deliveries.settle(conn, project_id, delivery_id, run.id)
        await record(
            conn,
            project_id,
            "trigger.fired",
            f"trigger webhook delivery {delivery_id}",
            run=run,
            delivery=delivery_id,
        )
    return run, True


async def project_exists(svc: Services, project_id: int) -> None:
    """NotFoundError unless the project exists."""
    async with svc.database.read() as conn:
        await projects.get(conn, project_id)
