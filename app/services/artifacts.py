"""A protocol's folder (`.protocols/<name>/`) as its recorded head commit holds it, read from git
objects: any API process answers, with or without the worktree of the machine that made it (the
head is brought from the database's bundles when missing: app.services.travel)."""

from __future__ import annotations

from pathlib import PurePosixPath

from app.artifacts.folder import MAX_READ_BYTES
from app.domain.protocol_files import artifact_path, protocol_folder
from app.domain.records import ProtocolRun
from app.errors import InvalidInputError, NotFoundError
from app.git import GitRepository
from app.services.context import Services
from app.services.travel import bring_head
from app.services.workspace import ensure_clone
from app.store import projects

_REGULAR = ("100644", "100755")


async def _head_repository(svc: Services, run: ProtocolRun) -> tuple[GitRepository, str]:
    if run.head_sha is None:
        raise NotFoundError(f"protocol {run.name} has no committed plan yet", field="protocol_id")
    async with svc.database.read() as conn:
        project = await projects.get(conn, run.project_id)
    repo = await ensure_clone(svc, project)
    await bring_head(svc, repo, run)
    return repo, run.head_sha


async def list_artifacts(svc: Services, run: ProtocolRun) -> list[str]:
    """The regular files of the protocol's folder at the run's head, relative to the folder (links
    and hidden files left out)."""
    repo, head = await _head_repository(svc, run)
    folder = PurePosixPath(protocol_folder(run.name))
    found = []
    for entry in await repo.files_at(head, str(folder)):
        relative = PurePosixPath(entry.path).relative_to(folder)
        if (
            entry.kind == "blob"
            and entry.mode in _REGULAR
            and not any(p.startswith(".") for p in relative.parts)
        ):
            found.append(str(relative))
    return sorted(found)


async def read_artifact(svc: Services, run: ProtocolRun, name: str) -> str:
    """One file of the protocol's folder at the run's head: NotFoundError when there is none, refused
    when it is a link or larger than MAX_READ_BYTES."""
    relative = artifact_path(name)
    repo, head = await _head_repository(svc, run)
    entry, data = await repo.file_at(
        head, f"{protocol_folder(run.name)}/{relative}", max_bytes=MAX_READ_BYTES
    )
    if entry is None:
        raise NotFoundError(f"artifact {name!r} not found")
    if entry.kind != "blob" or entry.mode not in _REGULAR:
        raise InvalidInputError(f"artifact {name!r} is not a file", field="name")
    if data is None:
        raise InvalidInputError(f"artifact {name!r} is larger than {MAX_READ_BYTES} bytes", field="name")
    return data.decode("utf-8", errors="replace")
