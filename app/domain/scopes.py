"""Who may reach what: callers (principals), what a route declares, and the rules between them.

Three kinds of credential, three levels of reach:
- the operator (the service's API token, or an open service): everything;
- an organisation's token: that organisation and its projects (with their runs, steps, agent runs);
- a project's token: that project and what belongs to it, nothing above it.

Every route declares a `Scope`: who may call it at all (`access`), and, when it is open to tenants
but names no resource, that its handler narrows what it answers to the caller (`narrows`). The
resources a request names are found by parameter name (`RESOURCE_PARAMS`, path and query alike),
so a route cannot leave one unchecked. Pure rules; the web layer applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Level(IntEnum):
    """How far a caller reaches (higher reaches more)."""

    PROJECT = 1
    ORGANISATION = 2
    OPERATOR = 3


class Kind(StrEnum):
    """The resources a request may name by id."""

    ORGANISATION = "organisation"
    PROJECT = "project"
    PROTOCOL = "protocol"
    STEP = "step"
    AGENT_RUN = "agent_run"


# A path or query parameter of one of these names names a resource, on every route, and is checked.
RESOURCE_PARAMS: dict[str, Kind] = {
    "organisation_id": Kind.ORGANISATION,
    "project_id": Kind.PROJECT,
    "protocol_id": Kind.PROTOCOL,
    "step_id": Kind.STEP,
    "agent_run_id": Kind.AGENT_RUN,
}
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Owner:
    """Where a resource belongs: its organisation, and its project (None for an organisation itself)."""

    organisation_id: int
    project_id: int | None


@dataclass(frozen=True)
class Principal:
    """The caller: the operator, an organisation (by its token) or a project (by its token)."""

    level: Level
    organisation_id: int | None = None
    project_id: int | None = None

    def reaches(self, owner: Owner) -> bool:
        if self.level is Level.OPERATOR:
            return True
        if self.level is Level.ORGANISATION:
            return owner.organisation_id == self.organisation_id
        return owner.project_id is not None and owner.project_id == self.project_id


OPERATOR = Principal(Level.OPERATOR)


class Access(StrEnum):
    """Who may call a route at all."""

    PUBLIC = "public"  # anyone, with no credential (health, docs, login, self-verifying webhooks)
    OPERATOR = "operator"  # the operator only: service-wide
    ORGANISATION = "organisation"  # the operator or an organisation token (within its reach)
    PROJECT = "project"  # any credential (within its reach)


_LOWEST = {
    Access.OPERATOR: Level.OPERATOR,
    Access.ORGANISATION: Level.ORGANISATION,
    Access.PROJECT: Level.PROJECT,
}


@dataclass(frozen=True)
class Scope:
    """What a route declares: who may call it; whether its handler narrows a list to the caller; which
    query parameters may repeat (any other repeated parameter is refused)."""

    access: Access
    narrows: bool = False
    multi: frozenset[str] = field(default_factory=frozenset)

    def admits(self, principal: Principal) -> bool:
        return self.access is Access.PUBLIC or principal.level >= _LOWEST[self.access]


PUBLIC = Scope(Access.PUBLIC)
SERVICE = Scope(Access.OPERATOR)
# Service-wide reference data any credential may read (the policy pack catalogue): nothing in it
# belongs to a tenant, so there is nothing to narrow.
CATALOGUE = Scope(Access.PROJECT, narrows=True)


def tenant(lowest: Level = Level.PROJECT, *, narrows: bool = False, multi: tuple[str, ...] = ()) -> Scope:
    """A route tenants may call: the resources it names are checked; a list says it `narrows`."""
    access = Access.ORGANISATION if lowest is Level.ORGANISATION else Access.PROJECT
    return Scope(access, narrows=narrows, multi=frozenset(multi))


def declaration_problem(path: str, path_params: list[str], scope: Scope) -> str | None:
    """Why `scope` cannot be right for a route at `path` (None when it can).

    A route open to tenants must name a resource in its path, or say that it narrows its answer
    to the caller: otherwise it would answer a tenant with everyone's rows.
    """
    unknown = [p for p in path_params if p.endswith("_id") and p not in RESOURCE_PARAMS]
    if unknown:
        return f"{path}: parameter {unknown[0]} names no kind of resource this service knows"
    if scope.access is Access.PUBLIC and any(p in RESOURCE_PARAMS for p in path_params):
        return f"{path}: public, yet names a resource"
    if scope.access in (Access.PUBLIC, Access.OPERATOR) or scope.narrows:
        return None
    if not any(p in RESOURCE_PARAMS for p in path_params):
        return f"{path}: open to tenants, names no resource and does not narrow to the caller"
    return None


def parse_id(raw: str) -> int | None:
    """`raw` as a resource id (1 .. 2**63-1, ASCII digits only), or None."""
    # ASCII only: str.isdigit() also takes '²' (which int() refuses) and '١' (which it reads as 1).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        return None
    return int(raw)
