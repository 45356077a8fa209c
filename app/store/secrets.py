"""Project secrets, encrypted at rest with the service's key (Fernet: AES-128-CBC + HMAC-SHA256).

The key is TASKSGODZILLA_SECRET_KEY when set (any long random string; the Fernet key is derived
from it), else a key the service makes once in `<data dir>/secret.key` (mode 0600) on first need:
enough for the embedded, one-machine first run. Workers on several machines must share the setting.
A secret stored under one key and read under another is a ConfigError that says so, never garbage.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings, env_name
from app.errors import ConfigError
from app.store.tables import project_secrets

KEY_FILE = "secret.key"
_DERIVATION = b"tasksgodzilla project secrets v1\0"


class SecretBox:
    """Encrypts and decrypts short strings with one key; `where` says which key, for error messages."""

    def __init__(self, secret: str, where: str) -> None:
        # Imported here: `cryptography` costs ~6 MB of memory that only a service using secrets needs.
        from cryptography.fernet import Fernet

        digest = hashlib.sha256(_DERIVATION + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self.where = where

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                f"a stored project secret cannot be decrypted with the key in {self.where}: set "
                f"{env_name('secret_key')} to the key it was stored with"
            ) from None


def secret_box(settings: Settings) -> SecretBox:
    """The box of this service's key: the setting, else the data dir's key file (made if absent)."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value(), env_name("secret_key"))
    path = settings.data_dir / KEY_FILE
    return SecretBox(_key_file(path), str(path))


def _key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once make one key between them, never two.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} must be readable by its owner only (chmod 600 {path})")
    key = path.read_text().strip()
    if len(key) < 16:
        raise ConfigError(f"{path} holds no usable key: remove it, or set {env_name('secret_key')}")
    return key


async def save(conn: AsyncConnection, project_id: int, name: str, ciphertext: str) -> None:
    """Store (or replace) the project's secret `name`, already encrypted (SecretBox.encrypt)."""
    statement = insert(project_secrets).values(project_id=project_id, name=name, ciphertext=ciphertext)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "name"],
            set_={"ciphertext": statement.excluded.ciphertext, "updated_at": func.now()},
        )
    )


async def load(conn: AsyncConnection, project_id: int, name: str) -> str | None:
    """The project's secret `name` as stored (encrypted), or None when it has none."""
    query = select(project_secrets.c.ciphertext).where(
        project_secrets.c.project_id == project_id, project_secrets.c.name == name
    )
    return (await conn.execute(query)).scalar_one_or_none()
