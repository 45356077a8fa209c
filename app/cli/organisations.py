"""`tasksgodzilla org …`: organisations (every project belongs to one) and their tokens."""

from __future__ import annotations

import json

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session, table
from app.cli.remote import organisation_at, over_http, remote_of
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
    settings = operator_settings()

    async def create_remotely(api: ApiClient) -> Organisation:
        body = {"name": name, **({"slug": slug} if slug else {})}
        return Organisation.model_validate(await api.post("/organisations", body))

    async def create(session: Session) -> Organisation:
        return await organisation_service.create_organisation(session.services, name=name, slug=slug)

    remote = remote_of(settings)
    made = over_http(remote, create_remotely) if remote else run_session(settings, create)
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

    async def every_remotely(api: ApiClient) -> list[Organisation]:
        found = [Organisation.model_validate(item) async for item in api.pages("/organisations")]
        return sorted(found, key=lambda o: o.id)

    settings = operator_settings()
    remote = remote_of(settings)
    found = over_http(remote, every_remotely) if remote else run_session(settings, every)
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
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def replace_remotely(api: ApiClient) -> tuple[Organisation, str]:
            found = await organisation_at(api, org_ref)
            return found, (await api.post(f"/organisations/{found.id}/token"))["token"]

        found, issued = over_http(remote, replace_remotely)
        _print_token(found, issued)
        return
    issued, digest = new_organisation_token()

    async def replace(session: Session) -> Organisation:
        async with session.services.database.read() as conn:
            found = await store.find(conn, org_ref)
        await organisation_service.replace_token(session.services, found.id, digest)
        return found

    _print_token(run_session(settings, replace), issued)


def _print_token(found: Organisation, issued: str) -> None:
    click.echo(f"token of organisation {found.slug} (send it as X-Organisation-Token; shown once):", err=True)
    click.echo(issued)
