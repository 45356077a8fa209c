"""The git bundles a run's branch travels in (table `branch_bundles`): one per commit its head moved to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import branch_bundles


@dataclass(frozen=True)
class Bundle:
    commit_sha: str
    since_sha: str  # the commit the bundle needs already (its prerequisite)
    data: bytes


async def keep(conn: AsyncConnection, run_id: int, bundle: Bundle) -> bool:
    """Keep `bundle` for the run; False when one for that commit is kept already (a retried job)."""
    statement = (
        insert(branch_bundles)
        .values(
            protocol_run_id=run_id,
            commit_sha=bundle.commit_sha,
            since_sha=bundle.since_sha,
            bundle=bundle.data,
        )
        .on_conflict_do_nothing(index_elements=["protocol_run_id", "commit_sha"])
    )
    return (await conn.execute(statement)).rowcount == 1


async def for_run(conn: AsyncConnection, run_id: int) -> list[Bundle]:
    """The run's bundles, oldest first: each one's prerequisite is in an earlier one, or the base."""
    b = branch_bundles.c
    rows = await conn.execute(
        select(b.commit_sha, b.since_sha, b.bundle).where(b.protocol_run_id == run_id).order_by(b.id)
    )
    return [Bundle(sha, since, bytes(data)) for sha, since, data in rows.all()]
