"""Organisations: create, read, list, and their token (its SHA-256 only; the token is never kept)."""

from __future__ import annotations

from sqlalchemy import ScalarSelect, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import Organisation
from app.errors import ConflictError, NotFoundError
from app.store.rows import fetch_all, fetch_one, page_size, to_record
from app.store.tables import organisations

DEFAULT_SLUG = "default"  # seeded by migration 0011: where projects go when no organisation is named


async def create(conn: AsyncConnection, *, name: str, slug: str) -> Organisation:
    """Insert an organisation; a taken name or slug is a ConflictError naming the field."""
    try:
        async with conn.begin_nested():
            row = (
                await conn.execute(
                    insert(organisations).values(name=name, slug=slug).returning(organisations)
                )
            ).one()
    except IntegrityError as exc:
        for column in ("name", "slug"):
            if f"uq_organisations_{column}" in str(exc.orig):
                raise ConflictError(
                    f"an organisation with this {column} exists already", field=column
                ) from None
        raise
    return to_record(Organisation, row)


async def get(conn: AsyncConnection, organisation_id: int) -> Organisation:
    return await fetch_one(
        conn,
        select(organisations).where(organisations.c.id == organisation_id),
        Organisation,
        what=f"organisation {organisation_id}",
    )


async def find(conn: AsyncConnection, ref: str) -> Organisation:
    """The organisation whose slug is `ref` (or whose id it is, in digits)."""
    match = organisations.c.slug == ref
    if ref.isascii() and ref.isdigit() and len(ref) < 19:
        match = match | (organisations.c.id == int(ref))
    row = (await conn.execute(select(organisations).where(match).limit(1))).first()
    if row is None:
        raise NotFoundError(f"no organisation {ref[:60]!r}", field="organisation")
    return to_record(Organisation, row)


async def list_page(
    conn: AsyncConnection, *, before_id: int | None = None, limit: int = 50, only: int | None = None
) -> list[Organisation]:
    """Newest first; `only` keeps that one organisation (a tenant's list)."""
    query = select(organisations).order_by(organisations.c.id.desc()).limit(page_size(limit))
    if before_id is not None:
        query = query.where(organisations.c.id < before_id)
    if only is not None:
        query = query.where(organisations.c.id == only)
    return await fetch_all(conn, query, Organisation)


async def set_token_hash(conn: AsyncConnection, organisation_id: int, token_hash: str) -> None:
    """Replace the organisation's token (its hash): the old token stops working at once."""
    await get(conn, organisation_id)
    await conn.execute(
        update(organisations).where(organisations.c.id == organisation_id).values(token_hash=token_hash)
    )


def default_id() -> ScalarSelect:
    """The default organisation's id, as a subquery (for an insert that names none)."""
    return select(organisations.c.id).where(organisations.c.slug == DEFAULT_SLUG).scalar_subquery()
