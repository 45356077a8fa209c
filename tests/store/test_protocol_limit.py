"""A project's protocol numbers print with four digits and grow past 9,999 without renaming anything;
a run past the last number is a clear conflict, not a crash."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.domain.commits import MAX_PROTOCOL_NUMBER, parse_step_tag, step_tag
from app.domain.workspace import protocol_worktree_path
from app.errors import ConflictError
from app.store import projects, protocols
from app.store.tables import projects as projects_table


async def _counter_at(conn, project_id: int, value: int) -> None:
    await conn.execute(
        update(projects_table).where(projects_table.c.id == project_id).values(protocol_counter=value)
    )


async def test_the_ten_thousandth_run_gets_five_digits_and_works_like_the_others(database, tmp_path):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="busy", local_path="/srv/busy")
        await _counter_at(conn, project.id, 9998)
        last_four = await protocols.create(conn, project.id, title="Last", slug="last")
        five = await protocols.create(conn, project.id, title="Next", slug="next")
    assert (last_four.name, five.name) == ("9999-last", "10000-next")
    assert parse_step_tag(f"feat: next {step_tag(five.number, 1)}") == (10000, 1)
    assert protocol_worktree_path(tmp_path, "busy", five.name).name == "10000-next"


async def test_a_run_past_the_last_number_is_refused_and_changes_nothing(database):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="full", local_path="/srv/full")
        await _counter_at(conn, project.id, MAX_PROTOCOL_NUMBER - 1)
        last = await protocols.create(conn, project.id, title="Last", slug="last")
    assert last.number == MAX_PROTOCOL_NUMBER
    with pytest.raises(ConflictError, match="99,999,999 protocol runs") as refused:
        async with database.transaction() as conn:
            await protocols.create(conn, project.id, title="One more", slug="one-more")
    assert refused.value.details["field"] == "project_id"
    async with database.read() as conn:
        counter = select(projects_table.c.protocol_counter).where(projects_table.c.id == project.id)
        assert await conn.scalar(counter) == MAX_PROTOCOL_NUMBER
