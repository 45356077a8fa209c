"""`tasksgodzilla serve` and `migrate` as an operator runs them: real processes, real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from app.store.embedded import embedded_url

CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    env.update(variables)
    return env


def _health(port: int) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_healthy(process: subprocess.Popen, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{process.stderr.read()}")
        try:
            if _health(port)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve never became healthy")


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def _serve(port: int, **variables: str) -> subprocess.Popen:
    return subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=_env(**variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _embedded_url(pgdata: Path) -> str:
    return embedded_url(pgdata, "tasksgodzilla")


def test_serve_on_embedded_postgres_keeps_data_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    port = _free_port()
    first = _serve(port, TASKSGODZILLA_DATA_DIR=str(data_dir))
    try:
        _wait_healthy(first, port)
        with psycopg.connect(_embedded_url(data_dir / "postgres"), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO projects (name, local_path, organisation_id) "
                "SELECT 'kept', '/srv/kept', id FROM organisations WHERE slug = 'default'"
            )
    finally:
        stderr = _stop(first)
    assert "listening" in stderr
    assert "stopped" in stderr
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "the embedded server was left running"

    second = _serve(port, TASKSGODZILLA_DATA_DIR=str(data_dir))
    try:
        _wait_healthy(second, port)
        with psycopg.connect(_embedded_url(data_dir / "postgres")) as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM projects")]
    finally:
        _stop(second)
    assert names == ["kept"]


def test_serve_uses_the_given_database_and_no_embedded_server(tmp_path, database_url):
    port = _free_port()
    process = _serve(port, TASKSGODZILLA_DATA_DIR=str(tmp_path), TASKSGODZILLA_DATABASE_URL=database_url)
    try:
        _wait_healthy(process, port)
        status, body = _health(port)
    finally:
        _stop(process)
    assert status == 200
    assert b'"database": "ok"' in body
    assert not (tmp_path / "postgres").exists()


def test_serve_refuses_an_invalid_setting_in_one_line(tmp_path):
    result = subprocess.run(
        [CLI, "serve"],
        env=_env(TASKSGODZILLA_DATA_DIR=str(tmp_path), TASKSGODZILLA_LOG_FORMAT="yaml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert result.stderr.strip() == (
        "error: invalid setting TASKSGODZILLA_LOG_FORMAT: Input should be 'json' or 'console'"
    )


def test_serve_reports_an_unreachable_database_without_a_traceback(tmp_path):
    result = subprocess.run(
        [CLI, "serve"],
        env=_env(
            TASKSGODZILLA_DATA_DIR=str(tmp_path),
            TASKSGODZILLA_DATABASE_URL=f"postgresql://postgres:pw-xyz123@127.0.0.1:{_free_port()}/db",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 69
    assert "error: cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr
    assert "pw-xyz123" not in result.stderr


@pytest.mark.parametrize("runs", [1, 2], ids=["fresh", "again"])
def test_migrate_command_is_idempotent(empty_database_url, runs):
    for _ in range(runs):
        result = subprocess.run(
            [CLI, "migrate"],
            env=_env(TASKSGODZILLA_DATABASE_URL=empty_database_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("database at revision ")
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
