"""What the scope check asks the database: whose token a hash is, and where a resource belongs.

Asked on every request of a tenant's token, so each is one hand-written statement through the
driver (prepared once per connection, see `Database.driver_read`), not a SQLAlchemy query.
"""

from __future__ import annotations

from app.domain.scopes import Kind, Level, Owner, Principal
from app.store.database import Database

# Always one statement whatever was offered (a caller passes a dummy hash when nothing was), so a
# missing token and a wrong one cost the same.
_PRINCIPAL = (
    f"SELECT {Level.PROJECT.value}, organisation_id, id FROM projects WHERE api_token_hash = $1 "  # noqa: S608
    f"UNION ALL SELECT {Level.ORGANISATION.value}, id, NULL FROM organisations WHERE token_hash = $1"
)
_OWNER = {
    Kind.ORGANISATION: "SELECT id, NULL::bigint FROM organisations WHERE id = $1",
    Kind.PROJECT: "SELECT organisation_id, id FROM projects WHERE id = $1",
    Kind.PROTOCOL: (
        "SELECT p.organisation_id, p.id FROM protocol_runs r JOIN projects p ON p.id = r.project_id "
        "WHERE r.id = $1"
    ),
    Kind.STEP: (
        "SELECT p.organisation_id, p.id FROM step_runs s "
        "JOIN protocol_runs r ON r.id = s.protocol_run_id JOIN projects p ON p.id = r.project_id "
        "WHERE s.id = $1"
    ),
    Kind.AGENT_RUN: (
        "SELECT p.organisation_id, p.id FROM agent_runs a JOIN projects p ON p.id = a.project_id "
        "WHERE a.id = $1"
    ),
}


async def principal_for_token_hash(database: Database, digest: str) -> Principal | None:
    """The project or organisation whose token hashes to `digest`, in one statement over both tables."""
    async with database.driver_read() as conn:
        row = await conn.fetchrow(_PRINCIPAL, digest)
    if row is None:
        return None
    return Principal(Level(row[0]), organisation_id=row[1], project_id=row[2])


async def owners_of(database: Database, resources: list[tuple[Kind, int]]) -> list[Owner | None]:
    """Where each resource (`kind`, id) belongs, in order; None for one that does not exist. One
    connection for all of them."""
    owners: list[Owner | None] = []
    async with database.driver_read() as conn:
        for kind, entity_id in resources:
            row = await conn.fetchrow(_OWNER[kind], entity_id)
            owners.append(None if row is None else Owner(organisation_id=row[0], project_id=row[1]))
    return owners
