"""Remote mode: a command over the HTTP API of a running service (`--server URL` or
TASKSGODZILLA_API_BASE, with TASKSGODZILLA_API_TOKEN), through app/api_client.py. The server's refusals
come back as its own error classes, so a remote command exits with the code the local one would.

A command with no remote form yet refuses in remote mode (`refuse_remote`): it never falls back to a
database of its own, which would answer about other projects than the server's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

import click

from app.api_client import ApiClient
from app.cli.refs import ProjectRef, ProtocolRef, StepRef, run_label
from app.config import Settings
from app.domain.records import Organisation, Project, ProtocolRun, StepRun
from app.errors import InvalidInputError, NotFoundError, UnavailableError

SERVER = "tasksgodzilla.server"  # where the group's --server option leaves its value (click's ctx.meta)
PAGE = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Remote:
    base_url: str
    token: str | None


def remote_of(settings: Settings) -> Remote | None:
    """The server this command talks to: `--server`, else TASKSGODZILLA_API_BASE; None for local mode."""
    context = click.get_current_context(silent=True)
    base = (context.meta.get(SERVER) if context is not None else None) or settings.api_base
    if not base:
        return None
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        raise InvalidInputError(
            f"server {base!r}: give an http(s) URL such as http://host:8011", field="server"
        )
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return Remote(base.rstrip("/"), token)


def over_http(remote: Remote, action: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run `action` with a client of the server."""

    async def go() -> T:
        async with ApiClient(remote.base_url, remote.token) as api:
            return await action(api)

    return asyncio.run(go())


def refuse_remote(remote: Remote) -> NoReturn:
    context = click.get_current_context(silent=True)
    name = f"`{context.command_path}`" if context is not None else "this command"
    raise UnavailableError(
        f"{name} is not available over HTTP yet (server {remote.base_url}); run it where the service's "
        "database is, without --server and TASKSGODZILLA_API_BASE"
    )


async def organisation_at(api: ApiClient, ref: str) -> Organisation:
    """The organisation of this slug or id; NotFoundError when there is none."""
    async for item in api.pages("/organisations", limit=PAGE):
        if ref in (item["slug"], str(item["id"])):
            return Organisation.model_validate(item)
    raise NotFoundError(f"no organisation {ref!r}", field="organisation")


async def project_at(api: ApiClient, ref: ProjectRef) -> Project:
    """The project named or numbered, as the server has it; NotFoundError when there is none."""
    if ref.project_id is not None:
        return Project.model_validate(await api.get(f"/projects/{ref.project_id}"))
    async for item in api.pages("/projects", limit=PAGE):
        if item["name"] == ref.name:
            return Project.model_validate(item)
    raise NotFoundError(f"no project named {ref.name!r}", field="project")


async def protocol_at(api: ApiClient, ref: ProtocolRef) -> tuple[Project, ProtocolRun]:
    """The protocol run and its project; NotFoundError when there is none."""
    if ref.run_id is not None:
        run = ProtocolRun.model_validate(await api.get(f"/protocols/{ref.run_id}"))
        return await project_at(api, ProjectRef(project_id=run.project_id)), run
    assert ref.project is not None
    project = await project_at(api, ref.project)
    async for item in api.pages(f"/projects/{project.id}/protocols", limit=PAGE):
        if item["number"] == ref.number and ref.name in (None, item["name"]):
            return project, ProtocolRun.model_validate(item)
    wanted = ref.name or f"{ref.number:04d}"
    raise NotFoundError(f"project {project.name} has no protocol {wanted}", field="protocol")


async def steps_of(api: ApiClient, run_id: int) -> list[StepRun]:
    found = [StepRun.model_validate(item) async for item in api.pages(f"/protocols/{run_id}/steps")]
    return sorted(found, key=lambda s: s.step_index)


async def step_at(api: ApiClient, ref: StepRef) -> tuple[Project, ProtocolRun, StepRun]:
    """The step run with its protocol run and project; NotFoundError when there is none."""
    if ref.step_id is not None:
        step = StepRun.model_validate(await api.get(f"/steps/{ref.step_id}"))
        project, run = await protocol_at(api, ProtocolRef(run_id=step.protocol_run_id))
        return project, run, step
    assert ref.protocol is not None
    project, run = await protocol_at(api, ref.protocol)
    for step in await steps_of(api, run.id):
        if step.step_index == ref.index:
            return project, run, step
    raise NotFoundError(f"{run_label(project, run)} has no step {ref.index:02d}", field="step")
