"""Triggers: cron schedules (API, one run per due time even with concurrent passes) and the signed
generic webhook (good, bad and missing signatures, bad bodies, replays)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from app.domain.records import ProjectStatus
from app.services import schedules
from app.store import projects
from app.store.intake_tables import schedule_firings
from app.web.keys import SERVICES
from tests.intake.support import intake_client, intake_project, kinds, runs_of
from tests.support.fake_forge import running_fake_forge

SIGNATURE = "X-TasksGodzilla-Signature"


@pytest.fixture
async def client(aiohttp_client, database_url):
    async with running_fake_forge() as forge:
        yield await intake_client(aiohttp_client, database_url, forge)


async def test_schedules_are_added_listed_and_deleted_with_bad_input_named(database, client):
    project = await intake_project(database)
    base = f"/projects/{project.id}/schedules"
    bad = await client.post(base, json={"cron": "every monday", "title": "Update deps"})
    assert bad.status == 422
    assert (await bad.json())["error"]["details"]["field"] == "cron"
    hidden = await client.post(base, json={"cron": "0 6 * * 1", "title": "Update\u202e deps"})
    assert hidden.status == 422
    created = await client.post(
        base, json={"cron": "0  6 * * 1", "title": "Update deps", "description": "All."}
    )
    assert created.status == 201
    schedule = await created.json()
    assert (schedule["cron"], schedule["enabled"]) == ("0 6 * * 1", True)
    listed = await (await client.get(base)).json()
    assert [s["id"] for s in listed["items"]] == [schedule["id"]]
    assert (await client.delete(f"{base}/{schedule['id']}")).status == 204
    assert (await client.delete(f"{base}/{schedule['id']}")).status == 404
    assert (await client.delete(f"{base}/x1")).status == 422
    assert await kinds(database, project.id, "schedule.") == ["schedule.created", "schedule.deleted"]


async def test_each_due_time_creates_one_run_even_with_concurrent_passes(database, client):
    project = await intake_project(database)
    svc = client.app[SERVICES]
    schedule = await schedules.add_schedule(svc, project.id, cron="*/5 * * * *", title="Weekly deps")
    start = schedule.created_at.replace(second=0, microsecond=0)
    due = start + timedelta(minutes=5 - start.minute % 5)  # the first due time after it was made
    assert await schedules.fire_due(svc, due - timedelta(seconds=1)) == 0  # nothing due yet

    passes = await asyncio.gather(*(schedules.fire_due(svc, due + timedelta(seconds=20)) for _ in range(4)))
    assert sorted(passes) == [0, 0, 0, 1]
    assert await schedules.fire_due(svc, due + timedelta(minutes=4)) == 0  # the same due time: done
    [run] = await runs_of(database, project.id)
    assert (run.title, run.description) == ("Weekly deps", "")

    assert await schedules.fire_due(svc, due + timedelta(minutes=5, seconds=1)) == 1  # the next one
    assert len(await runs_of(database, project.id)) == 2
    async with database.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(schedule_firings)) == 2
    assert await kinds(database, project.id, "schedule.fired") == ["schedule.fired"] * 2


def _signed(secret: str, body: bytes, **headers: str) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "data": body,
        "headers": {"Content-Type": "application/json", SIGNATURE: f"sha256={digest}", **headers},
    }


async def test_the_signed_trigger_creates_a_run_once_and_refuses_bad_signatures(database, client):
    project = await intake_project(database)
    path = f"/projects/{project.id}/triggers/webhook"
    body = json.dumps({"title": "Nightly audit", "description": "Check the deps."}).encode()
    assert (await client.post(path, **_signed("whatever", body))).status == 503  # no secret yet
    assert (await client.post("/projects/999999/triggers/webhook", **_signed("x", body))).status == 503

    made = await client.post(f"/projects/{project.id}/triggers/webhook/secret")
    assert made.status == 201
    answer = await made.json()
    secret = answer["secret"]
    assert (answer["path"], answer["header"]) == (path, SIGNATURE)

    unsigned = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    assert (await client.post(path, **_signed("wrong-secret", body))).status == 401
    tampered = _signed(secret, body)
    tampered["data"] = body.replace(b"Nightly", b"Hostile")
    assert (await client.post(path, **tampered)).status == 401
    assert await runs_of(database, project.id) == []

    first = await client.post(path, **_signed(secret, body, **{"X-TasksGodzilla-Delivery": "d-1"}))
    assert first.status == 201
    created = await first.json()
    replay = await client.post(path, **_signed(secret, body, **{"X-TasksGodzilla-Delivery": "d-1"}))
    assert replay.status == 200
    assert (await replay.json())["protocol_run_id"] == created["protocol_run_id"]
    [run] = await runs_of(database, project.id)
    assert (run.id, run.title, run.description) == (
        created["protocol_run_id"],
        "Nightly audit",
        "Check the deps.",
    )

    no_title = json.dumps({"description": "x"}).encode()
    refused = await client.post(path, **_signed(secret, no_title))
    assert refused.status == 422
    assert (await refused.json())["error"]["details"]["field"] == "title"
    assert len(await runs_of(database, project.id)) == 1
    assert await kinds(database, project.id, "trigger.") == ["trigger.secret_set", "trigger.fired"]

    # A new secret replaces the old one.
    await client.post(f"/projects/{project.id}/triggers/webhook/secret")
    assert (await client.post(path, **_signed(secret, body))).status == 401


async def test_a_ready_projects_triggered_run_starts_planning(database, client):
    project = await intake_project(database)
    async with database.transaction() as conn:
        await projects.set_status(conn, project.id, ProjectStatus.READY, expected_version=project.version)
    secret = (await (await client.post(f"/projects/{project.id}/triggers/webhook/secret")).json())["secret"]
    body = json.dumps({"title": "Nightly audit"}).encode()
    assert (
        await client.post(f"/projects/{project.id}/triggers/webhook", **_signed(secret, body))
    ).status == 201
    [run] = await runs_of(database, project.id)
    assert run.status == "planning"
    async with database.read() as conn:
        queued = await conn.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'plan_protocol_job'")
        )
    assert queued == 1
