"""Idempotency keys, stored in the same transaction as the resource a request created.

A creating service calls `claim` first in its transaction and `settle` once the resource exists, so
the key and its effect commit together or not at all: a request that fails or dies leaves the key
free, and a key is never taken without its resource. While a transaction holds a key (a
transaction-scoped advisory lock, gone with the transaction however it ends), a second request
with the same key is told to come back (409) instead of creating a second copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import ConflictError, InvalidInputError
from app.store.tables import idempotency_keys as keys

HEADER = "Idempotency-Key"


@dataclass
class Claim:
    """An Idempotency-Key sent with a creating request, scoped by method, path and caller."""

    scope: str
    key: str
    request_hash: str
    replayed: bool = False  # set by `claim` when the key had already created its resource


async def claim(conn: AsyncConnection, offered: Claim | None) -> int | None:
    """Hold the key for this transaction; the id of what it created before, if it did (a replay).

    No key (None): nothing to do. The key in use by a transaction still open: ConflictError. The key
    used with another request body: InvalidInputError.
    """
    if offered is None:
        return None
    lock = func.pg_try_advisory_xact_lock(
        func.hashtextextended(f"idempotency {offered.scope} {offered.key}", 0)
    )
    if not await conn.scalar(select(lock)):
        raise ConflictError("a request with this Idempotency-Key is still being answered", field=HEADER)
    # A statement after the lock: its snapshot sees whatever the key's last holder committed.
    row = (
        await conn.execute(
            select(keys.c.request_hash, keys.c.resource_id).where(
                keys.c.scope == offered.scope, keys.c.key == offered.key
            )
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != offered.request_hash:
        raise InvalidInputError("this Idempotency-Key was used with a different request", field=HEADER)
    offered.replayed = True
    return int(row.resource_id)


async def settle(conn: AsyncConnection, offered: Claim | None, resource_id: int) -> None:
    """Store the key with what it created, in the transaction that created it (after `claim`)."""
    if offered is None:
        return
    stored = await conn.scalar(
        insert(keys)
        .values(
            scope=offered.scope, key=offered.key, request_hash=offered.request_hash, resource_id=resource_id
        )
        .on_conflict_do_nothing()
        .returning(keys.c.key)
    )
    if stored is None:  # only without `claim` first: refuse rather than create a second copy
        raise ConflictError("this Idempotency-Key has been used already", field=HEADER)


async def forget_before(conn: AsyncConnection, cutoff: datetime) -> int:
    result = await conn.execute(delete(keys).where(keys.c.created_at < cutoff))
    return result.rowcount or 0
