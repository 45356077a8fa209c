"""Organisations in the store: migration 0011 moves existing projects into the default organisation;
token hashes resolve to who they belong to; every resource knows where it belongs."""

from __future__ import annotations

import psycopg

from app.domain.records import AgentRunStatus
from app.domain.scopes import Kind, Level, Owner, Principal
from app.store import migrate, organisations, protocols, steps, tenancy
from app.store import projects as project_store
from app.store.database import with_driver
from tests.support import seed


def test_the_migration_moves_existing_projects_into_the_default_organisation(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url, "0010")
    with psycopg.connect(with_driver(url, None), autocommit=True) as conn:
        conn.execute("INSERT INTO projects (name, local_path) VALUES ('old', '/srv/old')")
    migrate.upgrade(url)
    with psycopg.connect(with_driver(url, None), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.name, o.slug, o.token_hash "
            "FROM projects p JOIN organisations o ON o.id = p.organisation_id"
        ).fetchall()
    assert rows == [("old", "default", None)]
    migrate.downgrade(url, "0010")


async def test_a_token_hash_names_its_project_or_organisation(database):
    async with database.transaction() as conn:
        org = await organisations.create(conn, name="Acme", slug="acme")
        await organisations.set_token_hash(conn, org.id, "org-hash")
        project = await project_store.create(
            conn, name="shop", local_path="/srv/shop", organisation_id=org.id
        )
        await project_store.set_token_hash(conn, project.id, "project-hash")
    assert await tenancy.principal_for_token_hash(database, "org-hash") == Principal(
        Level.ORGANISATION, organisation_id=org.id
    )
    assert await tenancy.principal_for_token_hash(database, "project-hash") == Principal(
        Level.PROJECT, organisation_id=org.id, project_id=project.id
    )
    assert await tenancy.principal_for_token_hash(database, "nobody") is None


async def test_every_resource_knows_its_owner(database):
    async with database.transaction() as conn:
        org = await organisations.create(conn, name="Acme", slug="acme")
        project = await project_store.create(
            conn, name="shop", local_path="/srv/shop", organisation_id=org.id
        )
        run = await protocols.create(conn, project.id, title="Work", slug="work")
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": "one", "step_file": "01.md"}]
        )
        agent_run = await seed.agent_run(conn, run, step, status=AgentRunStatus.SUCCEEDED)
    owner = Owner(org.id, project.id)
    resources = [
        (Kind.ORGANISATION, org.id),
        (Kind.PROJECT, project.id),
        (Kind.PROTOCOL, run.id),
        (Kind.STEP, step.id),
        (Kind.AGENT_RUN, agent_run.id),
    ]
    assert await tenancy.owners_of(database, resources) == [Owner(org.id, None)] + [owner] * 4
    assert await tenancy.owners_of(database, [(kind, 999_999) for kind in Kind]) == [None] * len(Kind)
