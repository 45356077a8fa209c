"""Pure tenancy rules: who reaches what, which declarations are sound, counting failed sign-ins,
organisation names and slugs."""

from __future__ import annotations

import pytest

from app.domain.organisations import check_organisation_name, organisation_slug
from app.domain.scopes import (
    OPERATOR,
    PUBLIC,
    SERVICE,
    Level,
    Owner,
    Principal,
    declaration_problem,
    parse_id,
    tenant,
)
from app.domain.throttle import FailedSignIns
from app.errors import InvalidInputError

ORG_1 = Principal(Level.ORGANISATION, organisation_id=1)
PROJECT_10 = Principal(Level.PROJECT, project_id=10)


@pytest.mark.parametrize(
    ("principal", "owner", "reaches"),
    [
        (OPERATOR, Owner(2, 20), True),
        (OPERATOR, Owner(2, None), True),
        (ORG_1, Owner(1, 10), True),
        (ORG_1, Owner(1, None), True),
        (ORG_1, Owner(2, 20), False),
        (ORG_1, Owner(2, None), False),
        (PROJECT_10, Owner(1, 10), True),
        (PROJECT_10, Owner(1, 11), False),
        (PROJECT_10, Owner(1, None), False),  # not even its own organisation
    ],
)
def test_who_reaches_what(principal, owner, reaches):
    assert principal.reaches(owner) is reaches


def test_who_may_call_a_route_at_all():
    for principal in (OPERATOR, ORG_1, PROJECT_10):
        assert PUBLIC.admits(principal)
        assert tenant().admits(principal)
    assert SERVICE.admits(OPERATOR)
    assert not SERVICE.admits(ORG_1)
    assert not SERVICE.admits(PROJECT_10)
    assert tenant(Level.ORGANISATION).admits(ORG_1)
    assert not tenant(Level.ORGANISATION).admits(PROJECT_10)


@pytest.mark.parametrize(
    ("path", "params", "scope", "problem"),
    [
        ("/projects/{project_id}", ["project_id"], tenant(), None),
        ("/events", [], tenant(narrows=True), None),
        ("/queue", [], SERVICE, None),
        ("/health", [], PUBLIC, None),
        ("/events", [], tenant(), "names no resource and does not narrow"),
        ("/things/{thing_id}", ["thing_id"], tenant(), "names no kind of resource"),
        ("/projects/{project_id}", ["project_id"], PUBLIC, "public, yet names a resource"),
    ],
)
def test_a_declaration_must_be_sound(path, params, scope, problem):
    found = declaration_problem(path, params, scope)
    if problem is None:
        assert found is None
    else:
        assert problem in (found or "")


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("7", 7),
        ("9223372036854775807", 2**63 - 1),
        ("0", None),
        ("-1", None),
        ("²", None),
        ("١", None),
        ("", None),
    ],
)
def test_ids_are_ascii_digits_in_range(raw, value):
    assert parse_id(raw) == value


def test_failed_sign_ins_are_limited_per_client_and_in_all():
    failures = FailedSignIns(per_client=2)
    assert failures.retry_after("a", 0.0) is None
    failures.failed("a", 0.0)
    failures.failed("a", 10.0)
    assert failures.retry_after("a", 10.0) == pytest.approx(50.0)
    assert failures.retry_after("b", 10.0) is None, "another client is not held back by a's"
    assert failures.retry_after("a", 60.0) is None, "the oldest failure left the minute"
    for number in range(20):
        failures.failed(f"client-{number}", 61.0)
    assert failures.retry_after("fresh", 70.5) == pytest.approx(50.5), "twenty in all is the limit"
    assert failures.retry_after("fresh", 121.5) is None


def test_organisation_names_and_slugs():
    assert check_organisation_name("  Acme Ltd ") == "Acme Ltd"
    assert organisation_slug("Acme Ltd", None) == "acme-ltd"
    assert organisation_slug("Ünïcode Örg", None) == "unicode-org"
    assert organisation_slug("Acme", "acme-2") == "acme-2"
    for bad_name in ("", "x" * 101, "Ac\u202eme", "a\nb", "a\u200bb"):
        with pytest.raises(InvalidInputError):
            check_organisation_name(bad_name)
    for bad_slug in ("-acme", "Acme", "a_b", "a" * 49):
        with pytest.raises(InvalidInputError):
            organisation_slug("Acme", bad_slug)
    with pytest.raises(InvalidInputError, match="give one"):
        organisation_slug("東京", None)
