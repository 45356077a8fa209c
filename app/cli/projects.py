"""`tasksgodzilla project …`: register a repository, set it up (again), change, delete and list them.

Each command acts on the local database, or through a running service's API in remote mode
(app/cli/remote.py); both print the same lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session, table, wants_worker
from app.cli.common import worker_option as with_worker_option
from app.cli.progress import Console, Follower, follow_setup, read_new, setup_outcome
from app.cli.refs import ProjectRef, find_project, parse_project
from app.cli.remote import organisation_at, over_http, project_at, remote_of
from app.cli.remote_follow import events_after, follow_setup_over_http
from app.config import Settings
from app.domain.records import Event, Project
from app.domain.refnames import check_branch_name
from app.domain.visible import check_visible_text
from app.errors import ConflictError, InvalidInputError
from app.services import project_actions
from app.services import projects as project_service
from app.store import organisations as organisation_store
from app.store import projects as project_store


@click.group("project")
def project() -> None:
    """Register git repositories (projects) and set them up."""


@project.command("add")
@click.argument("name")
@click.option("--git-url", help="Remote to clone (https, ssh; local paths when allowed).")
@click.option("--local-path", help="An existing clone to work in instead of cloning.")
@click.option("--base-branch", default="main", show_default=True, help="Branch protocols start from.")
@click.option("--ci-provider", type=click.Choice(["github", "gitlab"]), help="CI that reports on branches.")
@click.option("--org", "org_ref", help="The organisation it belongs to (slug or id); else the default one.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the setup until it ends.")
@with_worker_option
@reports_errors
def add(
    name: str,
    git_url: str | None,
    local_path: str | None,
    base_branch: str,
    ci_provider: str | None,
    org_ref: str | None,
    wait: bool,
    worker: bool | None,
) -> None:
    """Register project NAME and queue its setup (clone or locate the repository).

    Exits 0 once the project is ready; 75 when its setup failed or awaits answers (the line says).
    """
    if not git_url and not local_path:
        raise InvalidInputError("give --git-url URL or --local-path PATH", field="git_url")
    check_branch_name(base_branch, field="base_branch")  # before any connection: said at once
    settings = operator_settings()
    # The service wants an absolute path; an operator naturally types one relative to here.
    path = str(Path(local_path).expanduser().resolve()) if local_path else None
    fields = {"name": name, "git_url": git_url, "local_path": path, "base_branch": base_branch}
    fields = {key: value for key, value in {**fields, "ci_provider": ci_provider}.items() if value}
    console = Console()

    if (remote := remote_of(settings)) is not None:

        async def register_remotely(api: ApiClient) -> None:
            where = "/projects"
            if org_ref is not None:
                where = f"/organisations/{(await organisation_at(api, org_ref)).id}/projects"
            created = Project.model_validate(await api.post(where, fields))
            console.line(f"project {created.name} registered (id {created.id}); setup queued")
            if wait:
                event = await follow_setup_over_http(api, created.id, Follower(console), None)
                _setup_ended(created, event, console)

        over_http(remote, register_remotely)
        return

    async def register(session: Session) -> None:
        choices: dict[str, Any] = dict(fields)
        if org_ref is not None:
            async with session.services.database.read() as conn:
                choices["organisation_id"] = (await organisation_store.find(conn, org_ref)).id
        created = await project_service.register_project(session.services, **choices)
        console.line(f"project {created.name} registered (id {created.id}); setup queued")
        if wait:
            await _await_setup(session, created, Follower(console))

    run_session(settings, register, worker=wait and wants_worker(settings, worker))


@project.command("setup")
@click.argument("project_ref", metavar="PROJECT")
@with_worker_option
@reports_errors
def setup(project_ref: str, worker: bool | None) -> None:
    """Queue the setup of PROJECT (a name or id) again, and follow it until it ends.

    Exits 0 once the project is ready; 75 when its setup failed or awaits answers.
    """
    setup_again(operator_settings(), parse_project(project_ref), worker)


def setup_again(settings: Settings, ref: ProjectRef, worker: bool | None) -> None:
    console = Console()
    if (remote := remote_of(settings)) is not None:
        over_http(remote, lambda api: _setup_again_remotely(api, ref, console))
        return

    async def again(session: Session) -> None:
        svc = session.services
        async with svc.database.transaction() as conn:
            found = await find_project(conn, ref)
        follower = Follower(console)
        # Only what happens from now on tells how this setup ends.
        await read_new(svc, follower, {"project_id": found.id}, project_level=True)
        # No service queues a setup again: the queue interface is what register_project uses too.
        queued = await project_service.request_setup(svc, found.id)
        console.line(f"setup of project {found.name} {'queued' if queued else 'already queued'}")
        await _await_setup(session, found, follower)

    run_session(settings, again, worker=wants_worker(settings, worker))


async def _setup_again_remotely(api: ApiClient, ref: ProjectRef, console: Console) -> None:
    found = await project_at(api, ref)
    # Only what happens from now on tells how this setup ends.
    _, now = await events_after(api, f"/projects/{found.id}/events", None)
    await api.post(f"/projects/{found.id}/actions/setup")
    console.line(f"setup of project {found.name} queued")
    _setup_ended(found, await follow_setup_over_http(api, found.id, Follower(console), now), console)


async def _await_setup(session: Session, project: Project, follower: Follower) -> None:
    _setup_ended(project, await follow_setup(session, project.id, follower), follower.console)


def _setup_ended(project: Project, event: Event, console: Console) -> None:
    """Say how the setup ended: a line when ready, else a ConflictError naming what to do."""
    outcome = setup_outcome(event)
    if outcome == "awaiting_answers":
        keys = " ".join(
            f"{q['key']}={q.get('recommended') or 'ANSWER'}" for q in event.payload.get("questions", [])
        )
        raise ConflictError(
            f"project {project.name} awaits answers to its setup questions; "
            f"answer with `tasksgodzilla project answer {project.name} {keys}`",
            status=outcome,
        )
    if outcome != "ready":
        reason = event.payload.get("reason") or event.message
        raise ConflictError(f"setup of project {project.name} failed: {reason}", status="failed")
    where = event.payload.get("local_path") or project.local_path or project.git_url
    console.line(f"project {project.name} ready ({where})")


@project.command("answer")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("answers", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--by", "by", default="operator", show_default=True, help="Who answers (local mode).")
@reports_errors
def answer(project_ref: str, answers: tuple[str, ...], by: str) -> None:
    """Answer PROJECT's setup questions (ci_provider=github ...); a project waiting for them is ready."""
    ref = parse_project(project_ref)
    pairs = [text.partition("=") for text in answers]
    if bad := [text for text, (key, sign, _) in zip(answers, pairs, strict=True) if not sign or not key]:
        raise InvalidInputError(f"answer {bad[0]!r}: give KEY=VALUE", field="answers")
    values = {key: value for key, _, value in pairs}
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def answer_remotely(api: ApiClient) -> Project:
            found = await project_at(api, ref)
            body = {"answers": values}  # the server records its caller as who answered
            return Project.model_validate(await api.post(f"/projects/{found.id}/clarifications", body))

        updated = over_http(remote, answer_remotely)
    else:

        async def apply(session: Session) -> Project:
            async with session.services.database.transaction() as conn:
                found = await find_project(conn, ref)
            return await project_service.answer_clarifications(session.services, found.id, values, by=by)

        updated = run_session(settings, apply)
    click.echo(f"project {updated.name} is {updated.status}")


@project.command("edit")
@click.argument("project_ref", metavar="PROJECT")
@click.option("--base-branch", help="Branch protocols start from (the setup should then run again).")
@click.option("--ci-provider", type=click.Choice(["github", "gitlab"]), help="CI that reports on branches.")
@click.option("--forge-repo", help="The forge's name of the repository (owner/name) for PRs and CI.")
@click.option("--fix-ci-attempts", type=int, help="Times an agent may fix a failing CI run.")
@click.option("--intake-label", help="Open forge issues with this label become protocol runs.")
@click.option("--intake-blocked-label", help="Labelled issues with this label too wait (default: blocked).")
@click.option(
    "--setup/--no-setup",
    "run_setup",
    default=None,
    help="After a base branch change: run the setup again (asked on a terminal when not given).",
)
@reports_errors
def edit(
    project_ref: str,
    base_branch: str | None,
    ci_provider: str | None,
    forge_repo: str | None,
    fix_ci_attempts: int | None,
    intake_label: str | None,
    intake_blocked_label: str | None,
    run_setup: bool | None,
) -> None:
    """Change PROJECT's settings; a new base branch offers to run its setup again."""
    ref = parse_project(project_ref)
    given = {"base_branch": base_branch, "ci_provider": ci_provider, "forge_repo": forge_repo}
    for name, label in (("intake_label", intake_label), ("intake_blocked_label", intake_blocked_label)):
        if label is not None:
            given[name] = check_visible_text(label, field=name)
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if fix_ci_attempts is not None:
        changes["fix_ci_attempts"] = fix_ci_attempts
    if not changes:
        raise InvalidInputError("give at least one setting to change (see --help)", field="project")
    if base_branch is not None:
        check_branch_name(base_branch, field="base_branch")
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def change_remotely(api: ApiClient) -> Project:
            found = await project_at(api, ref)
            return Project.model_validate(await api.patch(f"/projects/{found.id}", changes))

        changed = over_http(remote, change_remotely)
    else:

        async def change(session: Session) -> Project:
            async with session.services.database.read() as conn:
                found = await find_project(conn, ref)
            return await project_service.change_project(session.services, found.id, changes)

        changed = run_session(settings, change)
    click.echo(f"project {changed.name} changed: {', '.join(sorted(changes))}")
    if base_branch is None:
        return
    # The clone was checked against the old branch (the API's answer links to the setup for this).
    if run_setup is None and sys.stdin.isatty():
        run_setup = click.confirm("the setup should run again to check the new base branch: run it now?")
    if run_setup:
        setup_again(settings, ProjectRef(project_id=changed.id), None)
    else:
        click.echo(f"run the setup again with `tasksgodzilla project setup {changed.name}`")


@project.command("delete")
@click.argument("project_ref", metavar="PROJECT")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reports_errors
def delete(project_ref: str, yes: bool) -> None:
    """Delete PROJECT with its runs and events (its audit trail stays; its clone is left on disk)."""
    ref = parse_project(project_ref)
    if not yes and not click.confirm(f"delete project {project_ref} with its runs and events?"):
        raise ConflictError("not deleted (confirm, or pass --yes)")
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def delete_remotely(api: ApiClient) -> Project:
            found = await project_at(api, ref)
            await api.delete(f"/projects/{found.id}")
            return found

        gone = over_http(remote, delete_remotely)
    else:

        async def remove(session: Session) -> Project:
            async with session.services.database.read() as conn:
                found = await find_project(conn, ref)
            await project_actions.delete_project(session.services, found.id)
            return found

        gone = run_session(settings, remove)
    click.echo(f"project {gone.name} deleted (id {gone.id})")


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@reports_errors
def list_projects(as_json: bool) -> None:
    """List the projects, oldest first."""
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def every(api: ApiClient) -> list[Project]:
            return [Project.model_validate(item) async for item in api.pages("/projects", limit=500)]

        found = sorted(over_http(remote, every), key=lambda p: p.id)
    else:
        found = run_session(settings, _all_projects)
    if as_json:
        click.echo(json.dumps([p.model_dump(mode="json") for p in found], indent=2))
        return
    if not found:
        click.echo("no projects yet: add one with `tasksgodzilla project add NAME --git-url URL`")
        return
    rows = [[str(p.id), p.name, str(p.status), p.base_branch, p.git_url or p.local_path or ""] for p in found]
    for line in table(["id", "name", "status", "base", "repository"], rows):
        click.echo(line)


async def _all_projects(session: Session) -> list[Project]:
    found: list[Project] = []
    before = None
    async with session.services.database.transaction() as conn:
        while page := await project_store.list_page(conn, before_id=before, limit=500):
            found += page
            before = page[-1].id
    return sorted(found, key=lambda p: p.id)
