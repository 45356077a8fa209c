"""Policy packs: read the stored packs (the default one is seeded by the first migration)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import PolicyPack
from app.store.rows import fetch_all, fetch_one
from app.store.tables import policy_packs


async def get(conn: AsyncConnection, key: str, version: str) -> PolicyPack:
    query = select(policy_packs).where(policy_packs.c.key == key, policy_packs.c.version == version)
    return await fetch_one(conn, query, PolicyPack, what=f"policy pack {key}@{version}")


async def list_all(conn: AsyncConnection) -> list[PolicyPack]:
    query = select(policy_packs).order_by(policy_packs.c.key, policy_packs.c.id)
    return await fetch_all(conn, query, PolicyPack)
