"""Idempotency keys live with their effect: one resource per key, whatever fails, races or dies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from app.config import Settings
from app.domain.records import ProjectStatus
from app.services import planning
from app.store import projects as project_store
from app.store.database import with_driver
from app.web import idempotency
from app.web.api import registry
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support.workflow import make_repos

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"


@pytest.fixture
async def client(database_url, aiohttp_client, tmp_path):
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    return await aiohttp_client(create_app(settings, database_url))


async def _project(client, tmp_path, *, ready: bool) -> int:
    repos = make_repos(tmp_path)
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.create(conn, name="demo", local_path=str(repos.local))
        if ready:
            await project_store.set_status(
                conn, project.id, ProjectStatus.READY, expected_version=project.version
            )
    return project.id


async def _count(client, table: str) -> int:
    async with client.app[SERVICES].database.transaction() as conn:
        return (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one()


async def test_concurrent_duplicates_create_one_resource(client, tmp_path):
    repos = make_repos(tmp_path)
    headers = {**AUTH, "Idempotency-Key": "register-demo"}
    body = {"name": "demo", "local_path": str(repos.local)}
    answers = await asyncio.gather(*(client.post("/projects", json=body, headers=headers) for _ in range(8)))
    statuses = [a.status for a in answers]
    assert set(statuses) <= {201, 409}, statuses
    created = {(await a.json())["id"] for a in answers if a.status == 201}
    assert len(created) == 1, "every 201 names the same project"
    assert await _count(client, "projects") == 1
    for conflict in (a for a in answers if a.status == 409):
        assert (await conflict.json())["error"]["details"]["field"] == "Idempotency-Key"
    replay = await client.post("/projects", json=body, headers=headers)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.json())["id"] in created


async def test_a_request_failing_inside_its_transaction_leaves_the_key_free(client, tmp_path, monkeypatch):
    project_id = await _project(client, tmp_path, ready=False)
    url = f"/projects/{project_id}/protocols"
    headers = {**AUTH, "Idempotency-Key": "fails-once"}
    real_record = planning.record

    async def broken_record(*args, **kwargs):
        raise RuntimeError("the event store broke")

    monkeypatch.setattr(planning, "record", broken_record)
    failed = await client.post(url, json={"title": "Login"}, headers=headers)
    assert failed.status == 500
    assert await _count(client, "protocol_runs") == 0
    monkeypatch.setattr(planning, "record", real_record)
    again = await client.post(url, json={"title": "Login"}, headers=headers)
    assert again.status == 201, await again.text()
    assert "Idempotent-Replayed" not in again.headers, "nothing was created the first time"
    assert await _count(client, "protocol_runs") == 1


async def test_a_failure_after_the_effect_committed_never_frees_the_key(client, tmp_path, monkeypatch):
    """The run is created, then the answer cannot be sent (the process dies, say): a retry finds it."""
    project_id = await _project(client, tmp_path, ready=False)
    url = f"/projects/{project_id}/protocols"
    headers = {**AUTH, "Idempotency-Key": "answer-lost"}
    real_respond = registry.respond

    def lost(*args, **kwargs):
        raise RuntimeError("the answer was lost")

    monkeypatch.setattr(registry, "respond", lost)
    assert (await client.post(url, json={"title": "Login"}, headers=headers)).status == 500
    monkeypatch.setattr(registry, "respond", real_respond)
    retry = await client.post(url, json={"title": "Login"}, headers=headers)
    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await _count(client, "protocol_runs") == 1


async def test_create_and_start_is_completed_by_a_retry_never_duplicated(client, tmp_path):
    """The run is created, its start refused (the project is not ready): retrying starts it, once ready."""
    project_id = await _project(client, tmp_path, ready=False)
    url = f"/projects/{project_id}/protocols"
    headers = {**AUTH, "Idempotency-Key": "create-and-start"}
    body = {"title": "Login", "start": True}
    first = await client.post(url, json=body, headers=headers)
    assert first.status == 409, await first.text()
    assert (await client.post(url, json=body, headers=headers)).status == 409, "still not ready"
    assert await _count(client, "protocol_runs") == 1
    svc = client.app[SERVICES]
    async with svc.database.transaction() as conn:
        project = await project_store.get(conn, project_id)
        await project_store.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
    started = await client.post(url, json=body, headers=headers)
    assert started.status == 201
    assert started.headers["Idempotent-Replayed"] == "true"
    assert (await started.json())["status"] == "planning"
    again = await client.post(url, json=body, headers=headers)
    assert (await again.json())["status"] == "planning", "started once; the replay shows it as it is"
    assert await _count(client, "protocol_runs") == 1


# --- a real server killed in the middle of the request ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, database_url: str, data_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    env |= {
        "TASKSGODZILLA_DATABASE_URL": database_url,
        "TASKSGODZILLA_DATA_DIR": str(data_dir),
        "TASKSGODZILLA_RUN_WORKER": "false",
        "TASKSGODZILLA_API_TOKEN": TOKEN,
    }
    return subprocess.Popen(
        [CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _post(port: int, path: str, body: dict, key: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={**AUTH, "Idempotency-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _wait(check, *, seconds: float = 60, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_a_server_killed_between_effect_and_answer_neither_sticks_nor_duplicates(database_url, tmp_path):
    url = with_driver(database_url, None)
    with psycopg.connect(url, autocommit=True) as conn:
        project_id = conn.execute(
            "INSERT INTO projects (name, local_path, organisation_id) "
            "SELECT 'demo', '/srv/demo', id FROM organisations WHERE slug = 'default' RETURNING id"
        ).fetchone()[0]
    port = _free_port()
    server = _serve(port, database_url, tmp_path / "data")
    path, key, body = f"/projects/{project_id}/protocols", "killed-mid-request", {"title": "Login"}
    try:
        _wait(lambda: _healthy(port), what="the server")
        with (
            psycopg.connect(url, autocommit=True) as watcher,
            psycopg.connect(url) as blocker,
            psycopg.connect(url) as holder,
        ):
            # The run's number comes from its project's row: holding that row stops the request right
            # before its effect, with whatever it wrote to its key before that already committed.
            blocker.execute("SELECT 1 FROM projects WHERE id = %s FOR UPDATE", (project_id,))
            first = threading.Thread(target=lambda: _swallow(_post, port, path, body, key), daemon=True)
            first.start()
            _wait(lambda: _waits_on_a_lock(watcher), what="the request to reach its effect")
            # Hold the key's row if it exists by now, so that any answer still to be written to it
            # after the effect waits; then let the effect commit, and kill the server.
            holder.execute("SELECT 1 FROM idempotency_keys WHERE key = %s FOR UPDATE", (key,))
            blocker.commit()
            _wait(
                lambda: watcher.execute("SELECT count(*) FROM protocol_runs").fetchone()[0] == 1,
                what="the run",
            )
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
            holder.rollback()
            first.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    second = _serve(port, database_url, tmp_path / "data")
    try:
        _wait(lambda: _healthy(port), what="the restarted server")
        status, headers, answer = _post(port, path, body, key)
        with psycopg.connect(url, autocommit=True) as conn:
            runs = conn.execute("SELECT id FROM protocol_runs").fetchall()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert status == 201, answer
    assert headers.get("Idempotent-Replayed") == "true"
    assert [row[0] for row in runs] == [answer["id"]], "one run, the one the key created"


def _waits_on_a_lock(conn) -> bool:
    waiting = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'tasksgodzilla' AND wait_event_type = 'Lock'"
    ).fetchone()[0]
    return waiting > 0


def _swallow(function, *args):
    with contextlib.suppress(OSError):  # the server died under the request: that is the point
        function(*args)


def test_the_stored_body_hash_holds_no_hash_of_a_urls_credential():
    with_token = b'{"name": "shop", "git_url": "https://bot:ghp_s3cret@example.com/acme/shop.git"}'
    other_token = b'{"name": "shop", "git_url": "https://bot:ghp_other@example.com/acme/shop.git"}'
    no_token = b'{"name": "shop", "git_url": "https://example.com/acme/shop.git"}'
    assert idempotency.body_fingerprint(with_token) == idempotency.body_fingerprint(other_token)
    assert idempotency.body_fingerprint(with_token) != idempotency.body_fingerprint(no_token)
    assert idempotency.body_fingerprint(with_token) != hashlib.sha256(with_token).hexdigest()
    other_repo = no_token.replace(b"shop.git", b"cart.git")
    assert idempotency.body_fingerprint(other_repo) != idempotency.body_fingerprint(no_token)
