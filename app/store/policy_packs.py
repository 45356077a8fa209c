"""Policy packs: the stored catalogue (key, version, status, pack JSON), and what a run recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import PolicyPack
from app.errors import ConflictError, NotFoundError
from app.store.rows import fetch_all, fetch_one, to_record
from app.store.tables import policy_packs, projects, protocol_runs

ACTIVE = "active"


async def get(conn: AsyncConnection, key: str, version: str) -> PolicyPack:
    query = select(policy_packs).where(policy_packs.c.key == key, policy_packs.c.version == version)
    return await fetch_one(conn, query, PolicyPack, what=f"policy pack {key}@{version}")


async def versions(conn: AsyncConnection, key: str) -> list[PolicyPack]:
    """Every version of `key`, oldest first."""
    query = select(policy_packs).where(policy_packs.c.key == key).order_by(policy_packs.c.id)
    return await fetch_all(conn, query, PolicyPack)


async def latest_active(conn: AsyncConnection, key: str) -> PolicyPack:
    """The newest active version of `key` (newest: created last); NotFoundError when there is none."""
    query = (
        select(policy_packs)
        .where(policy_packs.c.key == key, policy_packs.c.status == ACTIVE)
        .order_by(policy_packs.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError(f"policy pack {key} has no active version", field="pack_key")
    return to_record(PolicyPack, row)


async def list_all(conn: AsyncConnection) -> list[PolicyPack]:
    query = select(policy_packs).order_by(policy_packs.c.key, policy_packs.c.id)
    return await fetch_all(conn, query, PolicyPack)


async def create(
    conn: AsyncConnection,
    *,
    key: str,
    version: str,
    name: str,
    description: str,
    status: str,
    pack: dict[str, Any],
) -> PolicyPack:
    """Store a new version of a pack (`pack` checked by the caller); a taken key@version is a conflict."""
    values = {
        "key": key,
        "version": version,
        "name": name,
        "description": description,
        "status": status,
        "pack": pack,
    }
    try:
        async with conn.begin_nested():
            row = (await conn.execute(insert(policy_packs).values(**values).returning(policy_packs))).one()
    except IntegrityError as exc:
        if "uq_policy_packs_key_version" in str(exc.orig):
            raise ConflictError(f"policy pack {key}@{version} exists already", field="version") from None
        raise
    return to_record(PolicyPack, row)


async def recorded_for_run(conn: AsyncConnection, run_id: int) -> Any:
    """In one statement: the policy a run recorded (`policy`, `hash`, `pack_key`, `pack_version`,
    all None before it is planned) and its project's `strict` mode now; None when there is no run."""
    runs = protocol_runs.c
    query = (
        select(
            runs.policy_effective.label("policy"),
            runs.policy_effective_hash.label("hash"),
            runs.policy_pack_key.label("pack_key"),
            runs.policy_pack_version.label("pack_version"),
            projects.c.policy_strict.label("strict"),
        )
        .select_from(protocol_runs.join(projects, projects.c.id == runs.project_id))
        .where(runs.id == run_id)
    )
    return (await conn.execute(query)).first()


async def recorded_policy(conn: AsyncConnection, run_id: int) -> dict[str, Any] | None:
    """The effective policy a run recorded when it was planned (None: not recorded yet)."""
    query = select(protocol_runs.c.policy_effective).where(protocol_runs.c.id == run_id)
    return (await conn.execute(query)).scalar()
