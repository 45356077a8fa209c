"""Who did it: the actor named by every operator action's event, resolved once per request or command.

An actor is the credential that authenticated the action, never the credential itself:
- `operator`: the service's API token, named by a fingerprint (the first 12 hex digits of its SHA-256),
  or `open` when the service has no token;
- `organisation` / `project`: an organisation's or a project's token, named by that organisation's or
  project's id (its name is the label, looked up when the request first writes an event);
- `cli`: the OS user running a local command (it reaches the database directly, so no token is involved).

`via` says where the action came from (`api`, `console`, `cli`). Pure values; the web layer and the
command line build them, the store writes them into the event's payload as `actor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.scopes import Level, Principal
from app.domain.tokens import token_hash

FINGERPRINT_LENGTH = 12


class ActorKind(StrEnum):
    OPERATOR = "operator"
    ORGANISATION = "organisation"
    PROJECT = "project"
    CLI = "cli"


class Via(StrEnum):
    API = "api"
    CONSOLE = "console"
    CLI = "cli"


@dataclass(frozen=True)
class Actor:
    """One operator action's author: `kind` and `id` identify it, `label` is what a person reads."""

    kind: ActorKind
    id: str
    label: str
    via: Via

    @property
    def unnamed(self) -> bool:
        """An organisation or project whose name is still to be looked up."""
        return not self.label and self.kind in (ActorKind.ORGANISATION, ActorKind.PROJECT)

    def as_payload(self) -> dict[str, str]:
        """How an event's payload names it (`actor`)."""
        return {"kind": str(self.kind), "id": self.id, "label": self.label, "via": str(self.via)}


def fingerprint(token: str) -> str:
    """A token's public name: enough of its SHA-256 to tell tokens apart, nothing to sign in with."""
    return fingerprint_of_hash(token_hash(token))


def fingerprint_of_hash(digest: str) -> str:
    """The fingerprint of the token whose SHA-256 (hex) is `digest`."""
    return digest[:FINGERPRINT_LENGTH]


def actor_for(principal: Principal, via: Via, *, service_token: str | None) -> Actor:
    """The actor for a caller the scope check accepted: the operator by the service token's
    fingerprint (`open` without one), an organisation or a project by its id."""
    if principal.level is Level.ORGANISATION and principal.organisation_id is not None:
        return Actor(ActorKind.ORGANISATION, str(principal.organisation_id), "", via)
    if principal.level is Level.PROJECT and principal.project_id is not None:
        return Actor(ActorKind.PROJECT, str(principal.project_id), "", via)
    token_id = fingerprint(service_token) if service_token else "open"
    return Actor(ActorKind.OPERATOR, token_id, f"operator {token_id}", via)


def cli_actor(user: str) -> Actor:
    """The OS user running a local command."""
    return Actor(ActorKind.CLI, user, f"{user} (local)", Via.CLI)
