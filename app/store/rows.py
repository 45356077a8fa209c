"""Rows to records, in one place, plus the guards every repository shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import Record
from app.errors import InvalidInputError, NotFoundError, StaleWriteError

R = TypeVar("R", bound=Record)

# Columns only the store itself may write: identity, optimistic-concurrency and audit fields.
PROTECTED_COLUMNS = frozenset({"id", "version", "created_at", "updated_at", "status"})

MAX_PAGE = 500


def to_record(kind: type[R], row: Any) -> R:
    return kind.model_validate(dict(row._mapping))


async def fetch_one(conn: AsyncConnection, statement: Any, kind: type[R], *, what: str) -> R:
    """The one row `statement` returns, as a record; NotFoundError when there is none."""
    row = (await conn.execute(statement)).first()
    if row is None:
        raise NotFoundError(f"{what} not found")
    return to_record(kind, row)


async def fetch_all(conn: AsyncConnection, statement: Select, kind: type[R]) -> list[R]:
    return [to_record(kind, row) for row in await conn.execute(statement)]


def writable_changes(table: Table, changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` checked against the table: known columns only, none of the protected ones."""
    unknown = set(changes) - set(table.columns.keys())
    protected = set(changes) & PROTECTED_COLUMNS
    if unknown or protected:
        field = sorted(unknown or protected)[0]
        raise InvalidInputError(f"{table.name}.{field} cannot be written here", field=field)
    return dict(changes)


def page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return limit


async def compare_and_set(
    conn: AsyncConnection,
    table: Table,
    kind: type[R],
    row_id: int,
    *,
    expected_version: int,
    changes: Mapping[str, Any],
    what: str,
) -> R:
    """Write `changes` only if the row is still at `expected_version`, bumping it.

    Raises NotFoundError when the row is gone and StaleWriteError when someone wrote first.
    """
    statement = (
        update(table)
        .where(table.c.id == row_id, table.c.version == expected_version)
        .values(**writable_changes(table, changes), version=table.c.version + 1, updated_at=func.now())
        .returning(table)
    )
    row = (await conn.execute(statement)).first()
    if row is not None:
        return to_record(kind, row)
    current = (await conn.execute(select(table.c.version).where(table.c.id == row_id))).scalar()
    if current is None:
        raise NotFoundError(f"{what} not found")
    raise StaleWriteError(f"{what} is at version {current}, not {expected_version}", current_version=current)
