"""The API's hottest reads, a protocol run and a page of a project's runs, straight through the driver.

Hand-written SQL (`$n` parameters: asyncpg prepares each text once per connection and reuses it), rows
as plain dicts in `ProtocolRun`'s field order: no SQLAlchemy statement, result or pydantic record on
the way (the API writes the dicts as JSON; the same bytes `ProtocolRun` would give, as a test checks).
The filters mean what `protocols.list_for_project` means by them (the console's reads go there).
"""

from __future__ import annotations

from typing import Any

from app.domain.records import ProtocolRun
from app.domain.statuses import ProtocolStatus
from app.store.database import Database
from app.store.rows import page_size
from app.store.tables import protocol_runs

Row = dict[str, Any]
COLUMNS = tuple(ProtocolRun.model_fields)
if _unknown := set(COLUMNS) - set(protocol_runs.c.keys()):
    raise RuntimeError(f"ProtocolRun fields that are not protocol_runs columns: {sorted(_unknown)}")
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM protocol_runs"  # noqa: S608 (our own column names)
ONE = _SELECT + " WHERE id = $1"


def page_sql(*, statuses: bool, before: bool, search: bool) -> str:
    """One text per combination of filters (not `$n IS NULL OR ...`: a prepared statement's generic
    plan could not use the `(project_id, id)` index for a cursor then)."""
    where = ["project_id = $1"]
    if statuses:
        where.append(f"status = ANY(${len(where) + 1}::text[])")
    if before:
        where.append(f"id < ${len(where) + 1}")
    if search:
        n = len(where) + 1
        where.append(f"(name ILIKE ${n} ESCAPE '\\' OR title ILIKE ${n} ESCAPE '\\')")
    return f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ${len(where) + 1}"


async def run_row(database: Database, run_id: int) -> Row | None:
    """Protocol run `run_id` as a dict of `ProtocolRun`'s fields; None when there is none."""
    async with database.driver_read() as conn:
        row = await conn.fetchrow(ONE, run_id)
    return None if row is None else dict(zip(COLUMNS, row, strict=True))


async def page_rows(
    database: Database,
    project_id: int,
    *,
    statuses: list[ProtocolStatus] | None = None,
    before_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[Row]:
    """A project's runs newest first, as `protocols.list_for_project` filters them, as dicts."""
    arguments: list[Any] = [project_id]
    if statuses:
        arguments.append([str(s) for s in statuses])
    if before_id is not None:
        arguments.append(before_id)
    if search:
        arguments.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    arguments.append(page_size(limit))
    sql = page_sql(statuses=bool(statuses), before=before_id is not None, search=bool(search))
    async with database.driver_read() as conn:
        rows = await conn.fetch(sql, *arguments)
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]  # faster than dict(row)
