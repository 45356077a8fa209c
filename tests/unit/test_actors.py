"""Actors: each credential named without being shown."""

from __future__ import annotations

import pytest

from app.domain.actors import Actor, ActorKind, Via, actor_for, cli_actor, fingerprint
from app.domain.scopes import OPERATOR, Level, Principal
from app.domain.tokens import token_hash


@pytest.mark.parametrize(
    ("principal", "token", "expected"),
    [
        (OPERATOR, "s3cret-token", Actor(ActorKind.OPERATOR, token_hash("s3cret-token")[:12], "", Via.API)),
        (OPERATOR, None, Actor(ActorKind.OPERATOR, "open", "operator open", Via.API)),
        (
            Principal(Level.ORGANISATION, organisation_id=7),
            "x",
            Actor(ActorKind.ORGANISATION, "7", "", Via.API),
        ),
        (
            Principal(Level.PROJECT, organisation_id=7, project_id=9),
            "x",
            Actor(ActorKind.PROJECT, "9", "", Via.API),
        ),
    ],
)
def test_each_caller_is_named_by_what_authenticated_it(principal, token, expected):
    actor = actor_for(principal, Via.API, service_token=token)
    if expected.kind is ActorKind.OPERATOR and token:
        expected = Actor(expected.kind, expected.id, f"operator {expected.id}", Via.API)
    assert actor == expected
    assert actor.unnamed is (expected.kind in (ActorKind.ORGANISATION, ActorKind.PROJECT))


def test_a_fingerprint_tells_tokens_apart_and_never_holds_the_token():
    first, second = fingerprint("tg-token-one-0123456789"), fingerprint("tg-token-two-0123456789")
    assert first != second
    assert len(first) == 12
    assert "token" not in first


def test_the_payload_names_kind_id_label_and_where_from():
    actor = cli_actor("alice")
    assert actor.as_payload() == {"kind": "cli", "id": "alice", "label": "alice (local)", "via": "cli"}
    assert not actor.unnamed
    console = actor_for(OPERATOR, Via.CONSOLE, service_token=None)
    assert console.as_payload()["via"] == "console"
