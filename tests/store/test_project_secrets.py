"""Project secrets at rest: encrypted with the service's key, and moved out of git URLs stored before."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psycopg
import pytest

from app.config import Settings
from app.errors import ConfigError
from app.store import migrate
from app.store.secrets import KEY_FILE, secret_box
from tests.support.dbdump import all_text

PASSWORD = "s3cr3tpass"


def test_the_key_file_is_made_once_for_its_owner_only(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    box = secret_box(settings)
    key_file = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed = box.encrypt(PASSWORD)
    assert PASSWORD not in sealed
    assert secret_box(settings).decrypt(sealed) == PASSWORD  # the same key, read back
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by its owner only"):
        secret_box(settings)


def test_a_secret_read_with_another_key_is_a_clear_error(tmp_path: Path):
    sealed = secret_box(Settings(secret_key="k" * 32, data_dir=tmp_path)).encrypt(PASSWORD)
    with pytest.raises(ConfigError, match="TASKSGODZILLA_SECRET_KEY"):
        secret_box(Settings(secret_key="other-key-0123456789", data_dir=tmp_path)).decrypt(sealed)
    assert not (tmp_path / KEY_FILE).exists()  # with the setting, no key file is made


def test_the_migration_moves_credentials_out_of_stored_urls(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = empty_database_url
    migrate.upgrade(url, "0010")
    leaked = f"https://bot:{PASSWORD}@forge.example/acme/shop.git"
    with psycopg.connect(url) as conn:
        project_id = conn.execute(
            "INSERT INTO projects (name, git_url) VALUES ('shop', %s) RETURNING id", (leaked,)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO projects (name, git_url) VALUES ('plain', 'https://forge.example/acme/plain.git')"
        )
        conn.execute(
            "INSERT INTO events (project_id, event_type, message, payload) VALUES (%s, %s, %s, %s)",
            (project_id, "project.created", f"cloned {leaked}", json.dumps({"git_url": leaked, "n": 1})),
        )
    monkeypatch.setenv("TASKSGODZILLA_DATA_DIR", str(tmp_path / "data"))

    migrate.upgrade(url)

    assert PASSWORD not in all_text(url)
    with psycopg.connect(url) as conn:
        urls = dict(conn.execute("SELECT name, git_url FROM projects").fetchall())
        [(name, ciphertext)] = conn.execute(
            "SELECT name, ciphertext FROM project_secrets WHERE project_id = %s", (project_id,)
        ).fetchall()
        message, payload = conn.execute("SELECT message, payload FROM events").fetchone()
    assert urls == {
        "shop": "https://forge.example/acme/shop.git",
        "plain": "https://forge.example/acme/plain.git",
    }
    assert name == "git_credential"
    stored = json.loads(secret_box(Settings(data_dir=tmp_path / "data")).decrypt(ciphertext))
    assert stored == {"host": "forge.example", "username": "bot", "password": PASSWORD}
    assert message == "cloned https://bot:********@forge.example/acme/shop.git"
    assert payload == {"git_url": "https://bot:********@forge.example/acme/shop.git", "n": 1}
