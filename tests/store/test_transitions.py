"""Status writes are compare-and-set, follow the domain table, and append their event atomically."""

from __future__ import annotations

import asyncio

import pytest

from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.errors import IllegalTransitionError, NotFoundError, StaleWriteError
from app.store import events, projects, protocols, steps
from app.store.transitions import move_protocol, move_step


@pytest.fixture
async def run(database):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="demo", local_path="/srv/demo")
        run = await protocols.create(conn, project.id, title="Add login", slug="add-login")
        await steps.create_many(
            conn,
            run.id,
            [{"step_index": i, "name": f"step {i}", "step_file": f"0{i}-step.md"} for i in (1, 2)],
        )
    return run


async def _events(database, **scope):
    async with database.transaction() as conn:
        return await events.list_page(conn, **scope)


async def test_a_legal_move_bumps_the_version_stamps_times_and_records_an_event(database, run):
    async with database.transaction() as conn:
        planning = await move_protocol(conn, run.id, P.PLANNING, expected_version=1)
        planned = await move_protocol(conn, run.id, P.PLANNED, expected_version=2)
        running = await move_protocol(conn, run.id, P.RUNNING, expected_version=3, reason="operator start")
        blocked = await move_protocol(
            conn, run.id, P.BLOCKED, expected_version=4, changes={"last_error": "CI failed"}
        )
        again = await move_protocol(conn, run.id, P.RUNNING, expected_version=5)
        done = await move_protocol(conn, run.id, P.COMPLETED, expected_version=6, payload={"pr": 12})
    assert [r.status for r in (planning, planned, running, blocked, again, done)] == [
        P.PLANNING,
        P.PLANNED,
        P.RUNNING,
        P.BLOCKED,
        P.RUNNING,
        P.COMPLETED,
    ]
    assert done.version == 7
    assert planning.started_at is None
    assert running.started_at is not None
    assert again.started_at == running.started_at
    assert blocked.last_error == "CI failed"
    assert blocked.finished_at is None
    assert done.finished_at is not None

    recorded = await _events(database, protocol_run_id=run.id)
    assert [e.event_type for e in recorded] == [
        "protocol.planning",
        "protocol.planned",
        "protocol.running",
        "protocol.blocked",
        "protocol.running",
        "protocol.completed",
    ]
    assert recorded[2].payload == {"from": "planned", "to": "running", "reason": "operator start"}
    assert recorded[5].payload == {"from": "running", "to": "completed", "pr": 12}
    assert recorded[0].project_id == run.project_id
    assert recorded[0].step_run_id is None


async def test_moving_on_clears_the_last_error_and_stopping_keeps_it(database, run):
    """A run blocked by QA that later ran again and completed no longer says `QA failed step 2`;
    a step keeps its error while it runs again (the fix-CI prompt quotes it) until QA or completion."""
    async with database.transaction() as conn:
        await move_protocol(conn, run.id, P.PLANNING, expected_version=1)
        await move_protocol(conn, run.id, P.PLANNED, expected_version=2)
        await move_protocol(conn, run.id, P.RUNNING, expected_version=3)
        blocked = await move_protocol(
            conn, run.id, P.BLOCKED, expected_version=4, changes={"last_error": "QA failed step 2"}
        )
        resumed = await move_protocol(conn, run.id, P.RUNNING, expected_version=5)
        done = await move_protocol(conn, run.id, P.COMPLETED, expected_version=6)
        step = (await steps.list_for_protocol(conn, run.id))[0]
        step = await move_step(conn, step.id, S.RUNNING, expected_version=step.version)
        step = await move_step(
            conn, step.id, S.BLOCKED, expected_version=step.version, changes={"last_error": "CI failed"}
        )
        again = await move_step(conn, step.id, S.PENDING, expected_version=step.version)
        again = await move_step(conn, step.id, S.RUNNING, expected_version=again.version)
        checked = await move_step(conn, step.id, S.NEEDS_QA, expected_version=again.version)
    assert blocked.last_error == "QA failed step 2"
    assert resumed.last_error is None
    assert done.last_error is None
    assert again.last_error == "CI failed"
    assert checked.last_error is None


async def test_an_illegal_move_raises_and_writes_nothing(database, run):
    with pytest.raises(IllegalTransitionError, match="from pending to running"):
        async with database.transaction() as conn:
            await move_protocol(conn, run.id, P.RUNNING, expected_version=1)
    async with database.transaction() as conn:
        assert (await protocols.get(conn, run.id)).status is P.PENDING
    assert await _events(database, protocol_run_id=run.id) == []


async def test_a_stale_version_loses(database, run):
    async with database.transaction() as conn:
        await move_protocol(conn, run.id, P.PLANNING, expected_version=1)
    with pytest.raises(StaleWriteError) as raised:
        async with database.transaction() as conn:
            await move_protocol(conn, run.id, P.CANCELLED, expected_version=1)
    assert raised.value.details["current_version"] == 2
    with pytest.raises(NotFoundError):
        async with database.transaction() as conn:
            await move_protocol(conn, 999_999, P.PLANNING, expected_version=1)


async def test_the_event_rolls_back_with_the_status(database, run):
    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await move_protocol(conn, run.id, P.PLANNING, expected_version=1)
            raise RuntimeError("the job died before commit")
    async with database.transaction() as conn:
        assert (await protocols.get(conn, run.id)).status is P.PENDING
    assert await _events(database, protocol_run_id=run.id) == []


async def test_two_racing_writers_one_winner(database, run):
    """Two workers both read version 1 and both try to start planning: exactly one may."""
    ready = asyncio.Barrier(2)

    async def attempt(target):
        async with database.transaction() as conn:
            await ready.wait()
            return await move_protocol(conn, run.id, target, expected_version=1)

    outcomes = await asyncio.gather(attempt(P.PLANNING), attempt(P.CANCELLED), return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], (StaleWriteError, IllegalTransitionError))
    assert len(await _events(database, protocol_run_id=run.id)) == 1


async def test_step_moves_count_attempts_and_name_the_step(database, run):
    async with database.transaction() as conn:
        first, _ = await steps.list_for_protocol(conn, run.id)
        running = await move_step(conn, first.id, S.RUNNING, expected_version=1)
        failed = await move_step(conn, first.id, S.FAILED, expected_version=2, changes={"last_error": "boom"})
        retried = await move_step(conn, first.id, S.PENDING, expected_version=3, reason="retry")
        again = await move_step(conn, first.id, S.RUNNING, expected_version=4)
        qa = await move_step(conn, first.id, S.NEEDS_QA, expected_version=5, changes={"commit_sha": "c0ffee"})
        done = await move_step(conn, first.id, S.COMPLETED, expected_version=6)
        with pytest.raises(IllegalTransitionError, match="from completed to running"):
            await move_step(conn, first.id, S.RUNNING, expected_version=7)
    assert (running.attempts, again.attempts, done.attempts) == (1, 2, 2)
    assert failed.finished_at is not None
    assert retried.finished_at is None
    assert qa.commit_sha == "c0ffee"
    assert done.status is S.COMPLETED

    recorded = await _events(database, step_run_id=first.id)
    assert [e.event_type for e in recorded] == [
        "step.running",
        "step.failed",
        "step.pending",
        "step.running",
        "step.needs_qa",
        "step.completed",
    ]
    assert all(e.protocol_run_id == run.id and e.project_id == run.project_id for e in recorded)
    assert recorded[2].payload == {"from": "failed", "to": "pending", "reason": "retry"}


async def test_a_lease_fences_off_a_taken_over_execution(database, run):
    async with database.transaction() as conn:
        first, _ = await steps.list_for_protocol(conn, run.id)
        step = await move_step(conn, first.id, S.RUNNING, expected_version=1, changes={"lease": "a"})
    holder_has_lock = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []

    async def old_owner_commits() -> None:
        async with database.transaction() as conn:
            await steps.hold_lease(conn, step.id, "a")
            holder_has_lock.set()
            await release.wait()
            order.append("a committed")

    async def takeover() -> None:
        await holder_has_lock.wait()
        async with database.transaction() as conn:
            await steps.update_fields(conn, step.id, expected_version=step.version, lease="b")
            order.append("b took over")

    owner = asyncio.create_task(old_owner_commits())
    taker = asyncio.create_task(takeover())
    await holder_has_lock.wait()
    await asyncio.sleep(0.2)  # the takeover is queued behind the row lock, not past it
    assert order == []
    release.set()
    await asyncio.gather(owner, taker)
    assert order == ["a committed", "b took over"]
    async with database.transaction() as conn:
        with pytest.raises(StaleWriteError, match="taken over by another worker"):
            await steps.hold_lease(conn, step.id, "a")
        await steps.hold_lease(conn, step.id, "b")


async def test_a_plan_is_written_only_while_the_run_is_being_planned(database, run):
    async with database.transaction() as conn:
        with pytest.raises(StaleWriteError, match="is pending, no longer being planned"):
            await protocols.hold_while_planning(conn, run.id)
        planning = await move_protocol(conn, run.id, P.PLANNING, expected_version=run.version)
        await protocols.hold_while_planning(conn, planning.id)
