"""`Database.snapshot()`: several reads see one moment, even while another transaction commits."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.store import projects


async def test_reads_in_a_snapshot_see_one_moment_and_cannot_write(database):
    async with database.transaction() as conn:
        await projects.create(conn, name="first", local_path="/srv/first")
    async with database.snapshot() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM projects"))
        async with database.transaction() as other:  # commits between the snapshot's two reads
            await projects.create(other, name="second", local_path="/srv/second")
        after = await conn.scalar(text("SELECT count(*) FROM projects"))
        assert before == after == 1
    async with database.read() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM projects")) == 2
    with pytest.raises(DBAPIError, match="read-only"):
        async with database.snapshot() as conn:
            await conn.execute(text("DELETE FROM projects"))
