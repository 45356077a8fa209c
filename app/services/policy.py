"""Policy in use: a project's pack and overrides, the policy a run is planned under, the pack catalogue.

A project names a pack key and a version, or no version for "the latest active one"; its overrides
and, when it enables them, the repository's own policy file at the run's base commit are merged over
the pack (app.domain.policy). A run records the pack, the effective policy and its hash once, when
planning starts: what it ran under stays what it ran under whatever the pack or project become.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.policy import Problem, errors_of, loosened_fields, merge, policy_hash, validate_pack
from app.domain.policy_engines import unknown_engine_message, unknown_engines
from app.domain.policy_file import MAX_BYTES, PATHS, parse_policy_file, refused_file
from app.domain.records import PolicyPack, Project
from app.errors import InvalidInputError, NotFoundError
from app.git import GitRepository
from app.services.context import Services
from app.services.events import record, record_action
from app.services.job_memo import memoised, prefetch
from app.store import policy_packs, projects, protocols

DEFAULT_PACK = "default"
STATUSES = ("draft", "active", "retired")
_KEY = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_VERSION = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6}){0,2}$")


@dataclass(frozen=True)
class RunPolicy:
    """The effective policy (every section present), its hash, the project's strict mode, the pack,
    and what of the overrides or repository file was not applied."""

    policy: dict[str, Any]
    hash: str
    strict: bool
    pack_key: str
    pack_version: str
    problems: tuple[Problem, ...] = ()


async def pack_of(conn: AsyncConnection, project: Project) -> PolicyPack:
    """The pack the project names: its pinned version, or the latest active version of its key."""
    key = project.policy_pack_key or DEFAULT_PACK
    if project.policy_pack_version is not None:
        return await policy_packs.get(conn, key, project.policy_pack_version)
    return await policy_packs.latest_active(conn, key)


def _resolved(
    project: Project, pack: PolicyPack, repo_layer: Any = None, extra: list[Problem] | None = None
) -> RunPolicy:
    effective, problems = merge(pack.pack, project.policy_overrides, repo_layer)
    return RunPolicy(
        policy=effective,
        hash=policy_hash(effective),
        strict=project.policy_strict,
        pack_key=pack.key,
        pack_version=pack.version,
        problems=(*(extra or []), *problems),
    )


async def policy_for_project(svc: Services, project_id: int) -> RunPolicy:
    """The project's central policy now: its pack and overrides (no repository file)."""
    async with svc.database.read() as conn:
        project = await projects.get(conn, project_id)
        pack = await pack_of(conn, project)
    return _resolved(project, pack)


async def policy_for_run(svc: Services, run_id: int) -> RunPolicy:
    """The policy the run recorded when it was planned; before that, its project's central policy now.
    `strict` is always the project's current mode (as the job read it first: a recorded policy never
    changes, and a job reads it once, app.services.job_memo)."""

    async def load() -> tuple[RunPolicy, bool]:
        async with svc.database.read() as conn:
            return await _run_policy(conn, run_id)

    found, _ = await memoised(("run_policy", run_id), load, keep=lambda found: found[1])
    return found


async def prefetch_run_policy(conn: AsyncConnection, run_id: int) -> None:
    """Within a job, read the run's recorded policy on the caller's connection, for the job's later
    `policy_for_run` calls."""
    await prefetch(("run_policy", run_id), lambda: _run_policy(conn, run_id), keep=lambda found: found[1])


async def run_policy(conn: AsyncConnection, run_id: int) -> RunPolicy:
    """policy_for_run, read on the caller's connection (inside its transaction)."""
    return (await _run_policy(conn, run_id))[0]


async def _run_policy(conn: AsyncConnection, run_id: int) -> tuple[RunPolicy, bool]:
    """The run's policy, and whether it is the one the run recorded (else its project's now)."""
    found = await policy_packs.recorded_for_run(conn, run_id)
    if found is not None and None not in (found.policy, found.pack_key, found.pack_version):
        recorded_policy = RunPolicy(
            policy=found.policy,
            hash=found.hash or policy_hash(found.policy),
            strict=found.strict,
            pack_key=found.pack_key,
            pack_version=found.pack_version,
        )
        return recorded_policy, True
    run = await protocols.get(conn, run_id)
    project = await projects.get(conn, run.project_id)
    recorded = await policy_packs.recorded_policy(conn, run_id)
    if recorded is None or run.policy_pack_key is None or run.policy_pack_version is None:
        return _resolved(project, await pack_of(conn, project)), False
    found = RunPolicy(
        policy=recorded,
        hash=run.policy_effective_hash or policy_hash(recorded),
        strict=project.policy_strict,
        pack_key=run.policy_pack_key,
        pack_version=run.policy_pack_version,
    )
    return found, True


async def read_repo_policy(repo: GitRepository, commit: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The repository's policy file at `commit` as a layer (None: no file, or one refused, with why).

    The first of `.tasksgodzilla/policy.yml`, `.yaml`, `.json` that exists is the file; a symlink,
    a folder or anything over MAX_BYTES is refused without its content ever being read."""
    for path in PATHS:
        entry, data = await repo.file_at(commit, path, max_bytes=MAX_BYTES)
        if entry is None:
            continue
        if entry.mode == "120000":
            return None, [refused_file(path, "a symbolic link, which is never followed")]
        if entry.kind != "blob" or entry.mode not in ("100644", "100755"):
            return None, [refused_file(path, "not a regular file")]
        if data is None:
            return None, [refused_file(path, f"larger than {MAX_BYTES} bytes")]
        return parse_policy_file(path, data)
    return None, []


async def record_run_policy(svc: Services, run_id: int, repo: GitRepository, base_commit: str) -> RunPolicy:
    """Resolve the run's policy at its base commit and record it on the run (once: a run that recorded
    one keeps it). Problems of the overrides or the repository file are in `problems`."""
    async with svc.database.read() as conn:
        run = await protocols.get(conn, run_id)
        project = await projects.get(conn, run.project_id)
        pack = await pack_of(conn, project)
    if run.policy_effective_hash is not None:
        return await policy_for_run(svc, run_id)
    layer: dict[str, Any] | None = None
    file_problems: list[Problem] = []
    if project.policy_repo_local_enabled:
        layer, file_problems = await read_repo_policy(repo, base_commit)
    resolved = _resolved(project, pack, layer, file_problems)
    async with svc.database.transaction() as conn:
        run = await protocols.get(conn, run_id)
        if run.policy_effective_hash is not None:  # another worker recorded it meanwhile
            return await policy_for_run(svc, run_id)
        run = await protocols.update_fields(
            conn,
            run.id,
            expected_version=run.version,
            policy_pack_key=resolved.pack_key,
            policy_pack_version=resolved.pack_version,
            policy_effective_hash=resolved.hash,
            policy_effective=resolved.policy,
        )
        await record(
            conn,
            run.project_id,
            "policy.applied",
            f"policy {resolved.pack_key}@{resolved.pack_version} ({resolved.hash[:12]})",
            run=run,
            pack_key=resolved.pack_key,
            pack_version=resolved.pack_version,
            hash=resolved.hash,
            base_commit=base_commit,
            repo_local=layer is not None,
            problems=[{"code": p.code, "message": p.message, "field": p.field} for p in resolved.problems],
        )
    return resolved


async def set_project_policy(
    svc: Services,
    project_id: int,
    *,
    pack_key: str,
    pack_version: str | None = None,
    overrides: dict[str, Any] | None = None,
    strict: bool | None = None,
    repo_local_enabled: bool | None = None,
) -> Project:
    """Put the project on a pack (a version, or None: the latest active), with overrides that must be
    a valid layer and loosen no locked field; `strict` and `repo_local_enabled` unchanged when None."""
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, project_id)
        pack = await _selectable(conn, pack_key, pack_version)
        overrides = project.policy_overrides if overrides is None else overrides
        loosened = _loosened(pack, overrides)
        _refuse_unknown_engines(overrides, "overrides")
        if loosened:
            raise InvalidInputError(
                f"overrides.{loosened[0]}: locked by pack {pack.key}@{pack.version}, it cannot be loosened",
                field=f"overrides.{loosened[0]}",
            )
        changes: dict[str, Any] = {
            "policy_pack_key": pack_key,
            "policy_pack_version": pack_version,
            "policy_overrides": overrides,
        }
        if strict is not None:
            changes["policy_strict"] = strict
        if repo_local_enabled is not None:
            changes["policy_repo_local_enabled"] = repo_local_enabled
        project = await projects.update_fields(conn, project.id, expected_version=project.version, **changes)
        await record(
            conn,
            project.id,
            "project.policy_changed",
            f"policy pack {pack_key}@{pack_version or 'latest active'}",
            pack_key=pack_key,
            pack_version=pack_version,
        )
    return project


async def preview_project_policy(
    svc: Services,
    project_id: int,
    *,
    pack_key: str,
    pack_version: str | None,
    overrides: dict[str, Any],
    strict: bool,
) -> RunPolicy:
    """The central policy the project would have with this selection, saving nothing: the same checks
    as `set_project_policy` (an active pack, overrides of the pack shape), except that an override
    loosening a locked field is one of the `problems` (saving it is refused)."""
    async with svc.database.read() as conn:
        await projects.get(conn, project_id)
        pack = await _selectable(conn, pack_key, pack_version)
    _loosened(pack, overrides)
    _refuse_unknown_engines(overrides, "overrides")
    effective, problems = merge(pack.pack, overrides)
    return RunPolicy(
        policy=effective,
        hash=policy_hash(effective),
        strict=strict,
        pack_key=pack.key,
        pack_version=pack.version,
        problems=tuple(problems),
    )


def _loosened(pack: PolicyPack, overrides: Any) -> list[str]:
    """The locked fields of `pack` the overrides would loosen; an InvalidInputError naming the field
    when the overrides are not of the pack shape."""
    try:
        return loosened_fields(pack.pack, overrides)
    except ValidationError as error:
        field, message = errors_of(error)[0]
        raise InvalidInputError(f"overrides.{field}: {message}", field=f"overrides.{field}") from None


def _refuse_unknown_engines(layer: dict[str, Any], prefix: str) -> None:
    """A pack or overrides naming an engine that does not exist: a 422 naming the first such field."""
    if found := unknown_engines(layer):
        field, value = found[0]
        raise InvalidInputError(unknown_engine_message(f"{prefix}.{field}", value), field=f"{prefix}.{field}")


async def _selectable(conn: AsyncConnection, key: str, version: str | None) -> PolicyPack:
    """The pack a project may newly pick: an active one (a draft or retired one is refused)."""
    if not _KEY.match(key):
        raise InvalidInputError(
            "pack_key: lowercase letters, digits and '-', starting with a letter", field="pack_key"
        )
    if version is not None and not _VERSION.match(version):
        raise InvalidInputError("pack_version: numbers separated by dots, such as 1.2", field="pack_version")
    try:
        pack = await (
            policy_packs.latest_active(conn, key) if version is None else policy_packs.get(conn, key, version)
        )
    except NotFoundError:
        what = key if version is None else f"{key}@{version}"
        raise InvalidInputError(f"no active policy pack {what}", field="pack_key") from None
    if pack.status != "active":
        raise InvalidInputError(
            f"policy pack {key}@{version} is {pack.status}, not active", field="pack_version"
        )
    return pack


async def create_pack(
    svc: Services,
    *,
    key: str,
    version: str,
    pack: dict[str, Any],
    name: str | None = None,
    status: str = "active",
) -> PolicyPack:
    """A new version of a pack (checked against the pack schema, stored with every section filled)."""
    if not _KEY.match(key) or key == "schema":  # /policy_packs/schema is the schema
        raise InvalidInputError("key: lowercase letters, digits and '-', starting with a letter", field="key")
    if not _VERSION.match(version):
        raise InvalidInputError("version: numbers separated by dots, such as 1.2", field="version")
    if status not in STATUSES:
        raise InvalidInputError(f"status: one of {', '.join(STATUSES)}", field="status")
    try:
        checked = validate_pack(pack)
    except ValidationError as error:
        field, message = errors_of(error)[0]
        raise InvalidInputError(f"pack.{field}: {message}", field=f"pack.{field}") from None
    _refuse_unknown_engines(checked, "pack")
    async with svc.database.transaction() as conn:
        created = await policy_packs.create(
            conn,
            key=key,
            version=version,
            name=name or key.capitalize(),
            description=checked["description"],
            status=status,
            pack=checked,
        )
        await record_action(
            conn, "policy.pack_created", f"pack {key}@{version} added", key=key, version=version
        )
    return created


async def catalogue(svc: Services) -> list[PolicyPack]:
    """Every version of every pack, by key then age."""
    async with svc.database.read() as conn:
        return await policy_packs.list_all(conn)


async def pack_versions(svc: Services, key: str) -> list[PolicyPack]:
    found = []
    if _KEY.match(key):  # else no pack has it: not worth a query (nor a NUL byte sent to the database)
        async with svc.database.read() as conn:
            found = await policy_packs.versions(conn, key)
    if not found:
        raise NotFoundError(f"no policy pack {key[:60]!r}", field="key")
    return found
