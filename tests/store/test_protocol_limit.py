"""A project's protocol numbers are four digits: the 10,000th run is a clear conflict, not a crash."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.errors import ConflictError
from app.store import projects, protocols
from app.store.tables import projects as projects_table


async def test_the_ten_thousandth_run_is_refused_and_changes_nothing(database):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="busy", local_path="/srv/busy")
        await conn.execute(
            update(projects_table).where(projects_table.c.id == project.id).values(protocol_counter=9998)
        )
        last = await protocols.create(conn, project.id, title="Last", slug="last")
    assert last.name == "9999-last"
    with pytest.raises(ConflictError, match="9,999 protocol runs") as refused:
        async with database.transaction() as conn:
            await protocols.create(conn, project.id, title="One more", slug="one-more")
    assert refused.value.details["field"] == "project_id"
    async with database.read() as conn:
        counter = select(projects_table.c.protocol_counter).where(projects_table.c.id == project.id)
        assert await conn.scalar(counter) == 9999
