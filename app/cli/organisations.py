"""`tasksgodzilla org …`: organisations (every project belongs to one) and their tokens."""

from __future__ import annotations

import json

import click

from app.cli.common import Session, operator_settings, reports_errors, run_session, table
from app.domain.records import Organisation
from app.domain.tokens import new_organisation_token
from app.services import organisations as organisation_service
from app.store import organisations as store


@click.group("org")
def org() -> None:
    """Organisations: each project belongs to one; an organisation's token reaches its projects only."""


@org.command("add")
@click.argument("name")
@click.option("--slug", help="How commands name it (a-z, 0-9, '-'); made from NAME when left out.")
@reports_errors
def add(name: str, slug: str | None) -> None:
    """Create organisation NAME."""

    async def create(session: Session) -> Organisation:
        return await organisation_service.create_organisation(session.services, name=name, slug=slug)

    made = run_session(operator_settings(), create)
    click.echo(f"organisation {made.slug} created (id {made.id})")


@org.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@reports_errors
def list_organisations(as_json: bool) -> None:
    """List the organisations, oldest first."""

    async def every(session: Session) -> list[Organisation]:
        found: list[Organisation] = []
        before = None
        async with session.services.database.read() as conn:
            while page := await store.list_page(conn, before_id=before, limit=500):
                found += page
                before = page[-1].id
        return sorted(found, key=lambda o: o.id)

    found = run_session(operator_settings(), every)
    if as_json:
        click.echo(json.dumps([o.model_dump(mode="json") for o in found], indent=2))
        return
    for line in table(["id", "slug", "name"], [[str(o.id), o.slug, o.name] for o in found]):
        click.echo(line)


@org.command("token")
@click.argument("org_ref", metavar="ORG")
@reports_errors
def token(org_ref: str) -> None:
    """Issue ORG's token (a slug or id), replacing any previous one; printed once, never stored."""
    issued, digest = new_organisation_token()

    async def replace(session: Session) -> Organisation:
        async with session.services.database.read() as conn:
            found = await store.find(conn, org_ref)
        await organisation_service.replace_token(session.services, found.id, digest)
        return found

    found = run_session(operator_settings(), replace)
    click.echo(f"token of organisation {found.slug} (send it as X-Organisation-Token; shown once):", err=True)
    click.echo(issued)
