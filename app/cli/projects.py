"""`tasksgodzilla project …`: register a repository, set it up (again), list them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.cli.common import Session, operator_settings, reports_errors, run_session, table, wants_worker
from app.cli.common import worker_option as with_worker_option
from app.cli.progress import Console, Follower, follow_setup, read_new, setup_outcome
from app.cli.refs import find_project, parse_project
from app.domain.records import Project
from app.domain.refnames import check_branch_name
from app.errors import ConflictError, InvalidInputError
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
    choices: dict[str, Any] = {"ci_provider": ci_provider} if ci_provider else {}
    console = Console()

    async def register(session: Session) -> None:
        if org_ref is not None:
            async with session.services.database.read() as conn:
                choices["organisation_id"] = (await organisation_store.find(conn, org_ref)).id
        created = await project_service.register_project(
            session.services,
            name=name,
            git_url=git_url,
            local_path=path,
            base_branch=base_branch,
            **choices,
        )
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
    ref = parse_project(project_ref)
    settings = operator_settings()
    console = Console()

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


async def _await_setup(session: Session, project: Project, follower: Follower) -> None:
    event = await follow_setup(session, project.id, follower)
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
    follower.console.line(f"project {project.name} ready ({where})")


@project.command("answer")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("answers", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--by", "by", default="operator", show_default=True, help="Who answers.")
@reports_errors
def answer(project_ref: str, answers: tuple[str, ...], by: str) -> None:
    """Answer PROJECT's setup questions (ci_provider=github ...); a project waiting for them is ready."""
    ref = parse_project(project_ref)
    pairs = [text.partition("=") for text in answers]
    if bad := [text for text, (key, sign, _) in zip(answers, pairs, strict=True) if not sign or not key]:
        raise InvalidInputError(f"answer {bad[0]!r}: give KEY=VALUE", field="answers")

    async def apply(session: Session) -> Project:
        async with session.services.database.transaction() as conn:
            found = await find_project(conn, ref)
        values = {key: value for key, _, value in pairs}
        return await project_service.answer_clarifications(session.services, found.id, values, by=by)

    updated = run_session(operator_settings(), apply)
    click.echo(f"project {updated.name} is {updated.status}")


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@reports_errors
def list_projects(as_json: bool) -> None:
    """List the projects, oldest first."""
    found = run_session(operator_settings(), _all_projects)
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
