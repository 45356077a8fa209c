"""`tasksgodzilla policy …`: the pack catalogue, a project's pack and overrides, its effective policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session, table
from app.cli.refs import find_project, parse_project
from app.cli.remote import over_http, project_at, remote_of
from app.domain.policy_file import MAX_BYTES
from app.domain.records import PolicyPack
from app.errors import InvalidInputError
from app.services import policy as policy_service


@click.group("policy")
def policy() -> None:
    """Policy packs and the policy each project runs under."""


@policy.command("list")
@reports_errors
def list_packs() -> None:
    """List every pack version, with its status."""
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:
        packs = over_http(remote, lambda api: api.get("/policy_packs"))["items"]
        rows = [
            [pack["key"], v["version"], v["status"], pack["description"][:70]]
            for pack in packs
            for v in pack["versions"]
        ]
    else:
        found = run_session(settings, lambda session: policy_service.catalogue(session.services))
        rows = [[p.key, p.version, p.status, p.description[:70]] for p in found]
    for line in table(["key", "version", "status", "description"], rows):
        click.echo(line)


@policy.command("show")
@click.argument("key")
@reports_errors
def show(key: str) -> None:
    """Print every version of pack KEY as JSON."""

    async def versions(session: Session) -> list[PolicyPack]:
        return await policy_service.pack_versions(session.services, key)

    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:
        # The API's versions: the same fields but the row's own id and update time.
        shown = over_http(remote, lambda api: api.get(f"/policy_packs/{quote(key, safe='')}"))["items"]
    else:
        shown = [p.model_dump(mode="json") for p in run_session(settings, versions)]
    click.echo(json.dumps(shown, indent=2))


@policy.command("set")
@click.argument("project_ref", metavar="PROJECT")
@click.option(
    "--pack", "pack_ref", required=True, metavar="KEY[@VERSION]", help="No version: the latest active."
)
@click.option(
    "--strict/--no-strict", default=None, help="Blocking findings block the run (default: unchanged)."
)
@click.option(
    "--overrides", "overrides_file", type=click.Path(dir_okay=False, path_type=Path), help="A JSON file."
)
@click.option(
    "--repo-local/--no-repo-local", default=None, help="Apply .tasksgodzilla/policy.yml (default: unchanged)."
)
@reports_errors
def set_policy(
    project_ref: str, pack_ref: str, strict: bool | None, overrides_file: Path | None, repo_local: bool | None
) -> None:
    """Put PROJECT on a pack, with overrides (kept when --overrides is not given)."""
    ref = parse_project(project_ref)
    key, _, version = pack_ref.partition("@")
    overrides = _read_overrides(overrides_file) if overrides_file is not None else None
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def apply_remotely(api: ApiClient) -> str:
            found = await project_at(api, ref)
            now = await api.get(f"/projects/{found.id}/policy")  # what is left unchanged stays
            body = {
                "pack_key": key,
                "pack_version": version or None,
                "overrides": now["overrides"] if overrides is None else overrides,
                "strict": now["strict"] if strict is None else strict,
                "repo_local_enabled": now["repo_local_enabled"] if repo_local is None else repo_local,
            }
            put = await api.request("PUT", f"/projects/{found.id}/policy", body=body)
            return f"project {found.name}: pack {key}@{version or 'latest active'}, strict {put['strict']}"

        click.echo(over_http(remote, apply_remotely))
        return

    async def apply(session: Session) -> str:
        async with session.services.database.read() as conn:
            found = await find_project(conn, ref)
        project = await policy_service.set_project_policy(
            session.services,
            found.id,
            pack_key=key,
            pack_version=version or None,
            overrides=overrides,
            strict=strict,
            repo_local_enabled=repo_local,
        )
        return (
            f"project {project.name}: pack {key}@{version or 'latest active'}, strict {project.policy_strict}"
        )

    click.echo(run_session(settings, apply))


@policy.command("effective")
@click.argument("project_ref", metavar="PROJECT")
@reports_errors
def effective(project_ref: str) -> None:
    """Print PROJECT's effective central policy (pack and overrides) and its hash, as JSON."""
    ref = parse_project(project_ref)
    settings = operator_settings()

    async def resolve_remotely(api: ApiClient) -> dict[str, Any]:
        found = await project_at(api, ref)
        got = await api.get(f"/projects/{found.id}/policy/effective")
        return {
            "pack": f"{got['pack_key']}@{got['pack_version']}",
            "hash": got["hash"],
            "strict": got["strict"],
            "policy": got["policy"],
            "problems": [{"code": p["code"], "message": p["message"]} for p in got["problems"]],
        }

    async def resolve(session: Session) -> dict[str, Any]:
        async with session.services.database.read() as conn:
            found = await find_project(conn, ref)
        resolved = await policy_service.policy_for_project(session.services, found.id)
        return {
            "pack": f"{resolved.pack_key}@{resolved.pack_version}",
            "hash": resolved.hash,
            "strict": resolved.strict,
            "policy": resolved.policy,
            "problems": [{"code": p.code, "message": p.message} for p in resolved.problems],
        }

    remote = remote_of(settings)
    shown = over_http(remote, resolve_remotely) if remote else run_session(settings, resolve)
    click.echo(json.dumps(shown, indent=2))


def _read_overrides(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise InvalidInputError(f"--overrides {path}: {error.strerror}", field="overrides") from None
    if len(data) > MAX_BYTES:
        raise InvalidInputError(f"--overrides {path}: larger than {MAX_BYTES} bytes", field="overrides")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidInputError(f"--overrides {path}: not JSON", field="overrides") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"--overrides {path}: a JSON object is expected", field="overrides")
    return value
