"""The credential of a project's https remote: taken out of the git URL at registration, kept
encrypted in `project_secrets`, and handed to git only by the commands that talk to the remote."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import Project
from app.git.credentials import CredentialSource, GitCredential
from app.services.context import Services
from app.services.job_memo import forget, memoised, prefetch
from app.store import secrets
from app.store.secrets import SecretBox, secret_box

GIT_CREDENTIAL = "git_credential"

# One box per key (the setting, else the key file of a data dir): building one hashes the key and
# may read or make the key file, which is done only once a secret is written or read.
_BOXES: dict[str, SecretBox] = {}


def box_of(svc: Services) -> SecretBox:
    settings = svc.settings
    source = settings.secret_key.get_secret_value() if settings.secret_key else f"file:{settings.data_dir}"
    box = _BOXES.get(source)
    if box is None:
        box = _BOXES[source] = secret_box(settings)
    return box


async def store_git_credential(
    svc: Services, conn: AsyncConnection, project_id: int, credential: GitCredential
) -> None:
    """Keep the credential that came in the project's git URL, encrypted, in the caller's transaction."""
    plaintext = json.dumps(
        {"host": credential.host, "username": credential.username, "password": credential.password}
    )
    await secrets.save(conn, project_id, GIT_CREDENTIAL, box_of(svc).encrypt(plaintext))
    forget((GIT_CREDENTIAL, project_id))


async def git_credential(svc: Services, project_id: int) -> GitCredential | None:
    """The project's stored git credential, decrypted; None for a project registered without one.
    Read once per job (app.services.job_memo): its redactor and its pushes share it."""

    async def load() -> GitCredential | None:
        async with svc.database.read() as conn:
            return await _read_git_credential(svc, conn, project_id)

    return await memoised((GIT_CREDENTIAL, project_id), load)


async def prefetch_git_credential(svc: Services, conn: AsyncConnection, project_id: int) -> None:
    """Within a job, read the project's credential on the caller's connection, for the job's later
    `git_credential` calls (its redactor, its pushes)."""
    await prefetch((GIT_CREDENTIAL, project_id), lambda: _read_git_credential(svc, conn, project_id))


async def _read_git_credential(svc: Services, conn: AsyncConnection, project_id: int) -> GitCredential | None:
    stored = await secrets.load(conn, project_id, GIT_CREDENTIAL)
    if stored is None:
        return None
    fields = json.loads(box_of(svc).decrypt(stored))
    return GitCredential(fields["host"], fields["username"], fields["password"])


def credential_source(svc: Services, project: Project) -> CredentialSource:
    """Where git gets the project's credential from: read (and decrypted) only when a command that
    talks to the remote needs it; it gives None for a project registered without one."""

    async def load() -> GitCredential | None:
        return await git_credential(svc, project.id)

    return load
