"""Organisations: create one (each project belongs to one), and replace its token."""

from __future__ import annotations

from app.domain.actors import fingerprint_of_hash
from app.domain.organisations import check_organisation_name, organisation_slug
from app.domain.records import Organisation
from app.services.context import Services
from app.services.events import record_action
from app.store import organisations


async def create_organisation(svc: Services, *, name: str, slug: str | None = None) -> Organisation:
    """Check and store an organisation (its slug made from the name unless given)."""
    name = check_organisation_name(name)
    chosen = organisation_slug(name, slug)
    async with svc.database.transaction() as conn:
        created = await organisations.create(conn, name=name, slug=chosen)
        await record_action(
            conn,
            "organisation.created",
            f"organisation {name} created",
            organisation_id=created.id,
            name=name,
            slug=chosen,
        )
    return created


async def replace_token(svc: Services, organisation_id: int, token_hash: str) -> None:
    """Store the hash of the organisation's new token: the previous token stops working at once, and
    so do console sessions signed in with it."""
    async with svc.database.transaction() as conn:
        await organisations.set_token_hash(conn, organisation_id, token_hash)
        await record_action(
            conn,
            "organisation.token_issued",
            "organisation token issued",
            organisation_id=organisation_id,
            fingerprint=fingerprint_of_hash(token_hash),
        )
