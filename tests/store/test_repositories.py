"""Projects, protocol runs, steps, events and agent runs against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from app.domain.events import NewEvent
from app.domain.records import AgentRunStatus, ProjectStatus, Stage
from app.domain.statuses import ProtocolStatus, StepStatus
from app.errors import ConflictError, InvalidInputError, NotFoundError, StaleWriteError
from app.logs import correlation_scope
from app.store import agent_runs, events, projects, protocols, steps
from tests.support.workflow import wait_for


async def _project(database, name="demo"):
    async with database.transaction() as conn:
        return await projects.create(
            conn, name=name, git_url="https://example.com/demo.git", base_branch="trunk"
        )


async def test_project_create_get_update(database):
    project = await _project(database)
    assert project.status is ProjectStatus.PENDING
    assert project.version == 1
    assert project.policy_overrides == {}
    async with database.transaction() as conn:
        updated = await projects.update_fields(
            conn, project.id, expected_version=1, ci_provider="github", local_path="/srv/demo"
        )
        assert (updated.ci_provider, updated.local_path, updated.version) == ("github", "/srv/demo", 2)
        assert updated.updated_at >= project.updated_at
        assert (await projects.get(conn, project.id)) == updated


async def test_duplicate_project_name_is_a_conflict_naming_the_field(database):
    await _project(database)
    with pytest.raises(ConflictError) as raised:
        await _project(database)
    assert raised.value.details == {"field": "name"}


async def test_a_project_needs_a_source(database):
    with pytest.raises(IntegrityError, match="ck_projects_has_source"):
        async with database.transaction() as conn:
            await projects.create(conn, name="nowhere")


async def test_stale_update_is_refused_and_changes_nothing(database):
    project = await _project(database)
    async with database.transaction() as conn:
        await projects.update_fields(conn, project.id, expected_version=1, ci_provider="gitlab")
    with pytest.raises(StaleWriteError) as raised:
        async with database.transaction() as conn:
            await projects.update_fields(conn, project.id, expected_version=1, ci_provider="github")
    assert raised.value.details["current_version"] == 2
    async with database.transaction() as conn:
        assert (await projects.get(conn, project.id)).ci_provider == "gitlab"


async def test_protected_and_unknown_columns_cannot_be_written(database):
    project = await _project(database)
    async with database.transaction() as conn:
        for bad in ({"status": "ready"}, {"version": 9}, {"colour": "red"}):
            with pytest.raises(InvalidInputError) as raised:
                await projects.update_fields(conn, project.id, expected_version=1, **bad)
            assert raised.value.details == {"field": next(iter(bad))}


async def test_missing_rows_are_not_found(database):
    async with database.transaction() as conn:
        with pytest.raises(NotFoundError, match="project 404 not found"):
            await projects.get(conn, 404)
        with pytest.raises(NotFoundError):
            await projects.update_fields(conn, 404, expected_version=1, ci_provider="x")
        with pytest.raises(NotFoundError):
            await protocols.create(conn, 404, title="t", slug="t")


async def test_project_paging_is_keyset_newest_first(database):
    async with database.transaction() as conn:
        created = [await projects.create(conn, name=f"p{i}", local_path=f"/r/{i}") for i in range(5)]
        first = await projects.list_page(conn, limit=2)
        second = await projects.list_page(conn, before_id=first[-1].id, limit=2)
        rest = await projects.list_page(conn, before_id=second[-1].id, limit=2)
        with pytest.raises(InvalidInputError):
            await projects.list_page(conn, limit=0)
    ids = [p.id for p in first + second + rest]
    assert ids == [p.id for p in reversed(created)]


async def test_protocol_numbers_are_unique_under_concurrency(database):
    project = await _project(database)

    async def create(i):
        async with database.transaction() as conn:
            return await protocols.create(conn, project.id, title=f"Task {i}", slug=f"task-{i}")

    runs = await asyncio.gather(*(create(i) for i in range(8)))
    assert sorted(r.number for r in runs) == list(range(1, 9))
    assert all(r.name == f"{r.number:04d}-task-{r.title.split()[1]}" for r in runs)
    assert all(r.base_branch == "trunk" and r.status is ProtocolStatus.PENDING for r in runs)


async def test_protocol_listing_filters_by_status(database):
    project = await _project(database)
    async with database.transaction() as conn:
        for i in range(3):
            await protocols.create(conn, project.id, title=f"t{i}", slug=f"t{i}")
        all_runs = await protocols.list_for_project(conn, project.id)
        pending = await protocols.list_for_project(conn, project.id, statuses=[ProtocolStatus.PENDING])
        running = await protocols.list_for_project(conn, project.id, statuses=[ProtocolStatus.RUNNING])
        page = await protocols.list_for_project(conn, project.id, before_id=all_runs[0].id, limit=1)
    assert len(all_runs) == len(pending) == 3
    assert running == []
    assert page == [all_runs[1]]


async def test_steps_are_created_in_plan_order(database):
    project = await _project(database)
    async with database.transaction() as conn:
        run = await protocols.create(conn, project.id, title="t", slug="t")
        created = await steps.create_many(
            conn,
            run.id,
            [
                {"step_index": 2, "name": "Second", "step_file": "02-second.md"},
                {"step_index": 1, "name": "First", "step_file": "01-first.md", "model": "m"},
            ],
        )
        listed = await steps.list_for_protocol(conn, run.id)
        updated = await steps.update_fields(conn, listed[0].id, expected_version=1, commit_sha="abc123")
    assert [s.step_index for s in created] == [1, 2] == [s.step_index for s in listed]
    assert listed[0].status is StepStatus.PENDING
    assert listed[0].model == "m"
    assert updated.commit_sha == "abc123"
    assert updated.version == 2


async def test_events_belong_to_a_project_and_optionally_a_run_and_step(database):
    project = await _project(database)
    other = await _project(database, name="other")
    async with database.transaction() as conn:
        run = await protocols.create(conn, project.id, title="t", slug="t")
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "s", "step_file": "01-s.md"}]
        )
        with correlation_scope("corr-1"):
            first = await events.append(
                conn, NewEvent(project.id, "project.updated", "changed", payload={"a": 1})
            )
        await events.append(conn, NewEvent(project.id, "protocol.created", "new", protocol_run_id=run.id))
        await events.append(
            conn, NewEvent(project.id, "step.created", "s", protocol_run_id=run.id, step_run_id=step.id)
        )
        await events.append(conn, NewEvent(other.id, "project.created", "other"))
    assert first.correlation_id == "corr-1"
    assert first.payload == {"a": 1}

    async with database.transaction() as conn:
        mine = await events.list_page(conn, project_id=project.id)
        of_run = await events.list_page(conn, protocol_run_id=run.id)
        of_step = await events.list_page(conn, step_run_id=step.id)
        by_type = await events.list_page(conn, event_types=["project.created", "step.created"])
        start = await events.position_of(conn, mine[0].id)

    async def handed_out() -> events.Batch | None:  # once no other session's transaction holds it back
        async with database.read() as conn:
            batch = await events.read_after(conn, start, project_id=project.id, limit=1)
        return batch if batch.settled else None

    after = await wait_for(handed_out, seconds=30, what="the next event")
    assert [e.event_type for e in mine] == ["project.updated", "protocol.created", "step.created"]
    assert [e.event_type for e in of_run] == ["protocol.created", "step.created"]
    assert [e.event_type for e in of_step] == ["step.created"]
    assert [e.event_type for e in by_type] == ["step.created", "project.created"]
    assert [placed.event for placed in after.settled] == [mine[1]]
    assert after.waiting == []


async def test_an_event_cannot_borrow_another_projects_run(database):
    project = await _project(database)
    other = await _project(database, name="other")
    async with database.transaction() as conn:
        run = await protocols.create(conn, project.id, title="t", slug="t")
    with pytest.raises(IntegrityError, match="fk_events_protocol_run_id_project_id"):
        async with database.transaction() as conn:
            await events.append(conn, NewEvent(other.id, "protocol.created", "x", protocol_run_id=run.id))


def test_a_step_event_must_name_its_run_and_a_known_type():
    with pytest.raises(ValueError, match="protocol run"):
        NewEvent(1, "step.created", "x", step_run_id=3)
    with pytest.raises(ValueError, match="unknown event type"):
        NewEvent(1, "step.exploded", "x")


async def test_agent_run_is_opened_then_closed_once(database):
    project = await _project(database)
    async with database.transaction() as conn:
        run = await protocols.create(conn, project.id, title="t", slug="t")
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "s", "step_file": "01-s.md"}]
        )
        started = await agent_runs.start(
            conn,
            project_id=project.id,
            protocol_run_id=run.id,
            step_run_id=step.id,
            stage=Stage.EXECUTION,
            engine="codex",
            model="gpt-5.1-codex",
            prompt_version="exec-v1:abc",
        )
        done = await agent_runs.finish(
            conn,
            started.id,
            status=AgentRunStatus.SUCCEEDED,
            input_tokens=120,
            cached_input_tokens=100,
            output_tokens=7,
            cost_usd=Decimal("0.001250"),
            exit_code=0,
            duration_ms=900,
        )
        with pytest.raises(ConflictError, match="succeeded already"):
            await agent_runs.finish(conn, started.id, status=AgentRunStatus.FAILED)
        listed = await agent_runs.list_for_step(conn, step.id)
    assert started.status is AgentRunStatus.RUNNING
    assert started.finished_at is None
    assert done.status is AgentRunStatus.SUCCEEDED
    assert done.cost_usd == Decimal("0.001250")
    assert done.finished_at is not None
    assert listed == [done]


async def test_policy_packs_are_listed_and_fetched(database):
    from app.store import policy_packs

    async with database.transaction() as conn:
        listed = await policy_packs.list_all(conn)
        fetched = await policy_packs.get(conn, "default", "1.0")
        with pytest.raises(NotFoundError, match=r"policy pack default@9\.9 not found"):
            await policy_packs.get(conn, "default", "9.9")
        latest = await policy_packs.latest_active(conn, "strict")
        with pytest.raises(NotFoundError, match="no active version"):
            await policy_packs.latest_active(conn, "nope")
    assert [(p.key, p.version) for p in listed] == [("default", "1.0"), ("starter", "1.0"), ("strict", "1.0")]
    assert fetched in listed
    assert fetched.description == fetched.pack["description"]
    assert latest.key == "strict"
