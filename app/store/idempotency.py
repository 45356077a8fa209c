"""Idempotency keys: claim a key, then record the answer given under it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.tables import idempotency_keys as keys


@dataclass(frozen=True)
class Stored:
    request_hash: str
    status: int | None  # None while the first request is still being answered
    body: str | None


async def claim(conn: AsyncConnection, scope: str, key: str, request_hash: str) -> Stored | None:
    """Claim `key` for this request; None when it is ours now, else what was stored under it."""
    claimed = await conn.scalar(
        insert(keys)
        .values(scope=scope, key=key, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(keys.c.key)
    )
    if claimed is not None:
        return None
    row = (await conn.execute(select(keys).where(keys.c.scope == scope, keys.c.key == key))).one()
    return Stored(row.request_hash, row.status, row.body)


async def answer(conn: AsyncConnection, scope: str, key: str, status: int, body: str) -> None:
    await conn.execute(
        update(keys).where(keys.c.scope == scope, keys.c.key == key).values(status=status, body=body)
    )


async def release(conn: AsyncConnection, scope: str, key: str) -> None:
    """Forget a claim whose request failed, so a retry may run again."""
    await conn.execute(delete(keys).where(keys.c.scope == scope, keys.c.key == key, keys.c.status.is_(None)))


async def forget_before(conn: AsyncConnection, cutoff: datetime) -> int:
    result = await conn.execute(delete(keys).where(keys.c.created_at < cutoff))
    return result.rowcount or 0
