"""What the scope check asks the database: whose token a hash is, and where a resource belongs."""

from __future__ import annotations

from sqlalchemy import Select, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.scopes import Kind, Level, Owner, Principal
from app.store.tables import agent_runs, organisations, projects, protocol_runs, step_runs


async def principal_for_token_hash(conn: AsyncConnection, digest: str) -> Principal | None:
    """The project or organisation whose token hashes to `digest`, in one statement over both tables.

    Always one statement whatever was offered (a caller passes a dummy hash when nothing was), so a
    missing token and a wrong one cost the same.
    """
    query = union_all(
        select(literal(Level.PROJECT.value).label("level"), projects.c.organisation_id, projects.c.id).where(
            projects.c.api_token_hash == digest
        ),
        select(literal(Level.ORGANISATION.value), organisations.c.id, null()).where(
            organisations.c.token_hash == digest
        ),
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Principal(Level(row[0]), organisation_id=row[1], project_id=row[2])


def _owner_query(kind: Kind, entity_id: int) -> Select:
    if kind is Kind.ORGANISATION:
        return select(organisations.c.id, null()).where(organisations.c.id == entity_id)
    owner = select(projects.c.organisation_id, projects.c.id)
    if kind is Kind.PROJECT:
        return owner.where(projects.c.id == entity_id)
    if kind is Kind.PROTOCOL:
        joined = protocol_runs.join(projects, projects.c.id == protocol_runs.c.project_id)
        return owner.select_from(joined).where(protocol_runs.c.id == entity_id)
    if kind is Kind.STEP:
        joined = step_runs.join(protocol_runs, protocol_runs.c.id == step_runs.c.protocol_run_id).join(
            projects, projects.c.id == protocol_runs.c.project_id
        )
        return owner.select_from(joined).where(step_runs.c.id == entity_id)
    joined = agent_runs.join(projects, projects.c.id == agent_runs.c.project_id)
    return owner.select_from(joined).where(agent_runs.c.id == entity_id)


async def owner_of(conn: AsyncConnection, kind: Kind, entity_id: int) -> Owner | None:
    """Where resource `kind` `entity_id` belongs; None when there is no such resource."""
    row = (await conn.execute(_owner_query(kind, entity_id))).first()
    return None if row is None else Owner(organisation_id=row[0], project_id=row[1])
