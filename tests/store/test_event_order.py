"""The event log hands events out in transaction order and loses none to concurrent commits.

An event's id is taken at insert and its transaction commits later, so reading `id > cursor` skips
one that took a lower id but committed after the reader moved past it. Each case below holds
transactions open on their own connections, in the order that loses an event.

A transaction of another session on the same server also holds the horizon back (CI may share one):
reads that expect events handed out wait for them, with a deadline.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from sqlalchemy import text

from app.domain.events import NewEvent
from app.store import events, projects
from app.store.events import START, Batch, Position
from tests.support.workflow import wait_for


async def _project_id(database) -> int:
    async with database.transaction() as conn:
        project = await projects.create(conn, name="demo", git_url="https://example.com/demo.git")
        return project.id


def _types(placed) -> list[str]:
    return [p.event.event_type for p in placed]


async def _read(database, after: Position, project_id: int) -> Batch:
    async with database.read() as conn:
        return await events.read_after(conn, after, project_id=project_id)


async def _settled(database, after: Position, project_id: int, count: int) -> Batch:
    """The read once it hands out `count` events (or more)."""

    async def handed_out() -> Batch | None:
        batch = await _read(database, after, project_id)
        return batch if len(batch.settled) >= count else None

    return await wait_for(handed_out, seconds=30, what=f"{count} events handed out")


async def _open(stack: AsyncExitStack, database):
    """A transaction on its own connection, committed when `stack` closes."""
    return await stack.enter_async_context(database.transaction())


async def _take_xid(conn) -> None:
    await conn.execute(text("SELECT pg_current_xact_id()"))


async def test_an_event_committed_after_a_later_one_is_still_delivered(database):
    # The probe: A inserts, B inserts and commits, a reader reads, A commits.
    project_id = await _project_id(database)
    async with AsyncExitStack() as a:
        conn_a = await _open(a, database)
        await events.append(conn_a, NewEvent(project_id, "project.updated", "A"))
        async with database.transaction() as conn_b:
            await events.append(conn_b, NewEvent(project_id, "project.ready", "B"))

        first = await _read(database, START, project_id)
        assert first.settled == []  # B waits: A, older and open, may still commit before it
        assert _types(first.waiting) == ["project.ready"]
    second = await _settled(database, first.end or START, project_id, 2)
    assert _types(second.settled) == ["project.updated", "project.ready"]
    assert second.waiting == []


async def test_the_cursor_follows_transaction_order_not_id_order(database):
    # T_E takes its xid before T_F; T_F inserts (the lower id), T_E inserts and commits, a reader
    # hands out T_E's event, then T_F commits. An id cursor, even under the xmin horizon, would have
    # moved past T_F's lower id; the (txid, id) cursor has not.
    project_id = await _project_id(database)
    async with AsyncExitStack() as t_f:
        async with AsyncExitStack() as t_e:
            conn_e = await _open(t_e, database)
            await _take_xid(conn_e)
            conn_f = await _open(t_f, database)
            f = await events.append(conn_f, NewEvent(project_id, "step.running", "F"))
            e = await events.append(conn_e, NewEvent(project_id, "step.completed", "E"))
            assert f.id < e.id
        first = await _settled(database, START, project_id, 1)
        # Handed out while T_F is open: T_E's xid is below the horizon (T_F's).
        assert _types(first.settled) == ["step.completed"]
    second = await _settled(database, first.end or START, project_id, 1)
    assert _types(second.settled) == ["step.running"]


async def test_a_long_transaction_without_events_delays_but_never_loses_them(database):
    project_id = await _project_id(database)
    async with AsyncExitStack() as long:
        await _take_xid(await _open(long, database))  # writes, but no event
        async with database.transaction() as conn:
            await events.append(conn, NewEvent(project_id, "project.ready", "B"))
        held = await _read(database, START, project_id)
        assert (held.settled, _types(held.waiting)) == ([], ["project.ready"])
    assert _types((await _settled(database, START, project_id, 1)).settled) == ["project.ready"]


async def test_from_now_and_plain_ids_are_positions(database):
    project_id = await _project_id(database)
    async with database.transaction() as conn:
        old = await events.append(conn, NewEvent(project_id, "project.updated", "old"))
    async with database.read() as conn:
        now = await events.horizon(conn)
        assert await events.position_of(conn, old.id) < now
        assert await events.position_of(conn, 0) == START
        # An id not stored stands for the newest stored event below it.
        assert await events.position_of(conn, old.id + 1000) == await events.position_of(conn, old.id)
        assert await events.start_at(conn, None, from_now=False) == START
        assert await events.start_at(conn, None, from_now=True) == now
    async with database.transaction() as conn:
        await events.append(conn, NewEvent(project_id, "project.ready", "new"))
    assert _types((await _settled(database, now, project_id, 1)).settled) == ["project.ready"]
    async with database.read() as conn:
        after_old = await events.start_at(conn, old.id, from_now=True)
    assert _types((await _settled(database, after_old, project_id, 1)).settled) == ["project.ready"]
