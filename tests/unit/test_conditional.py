"""If-None-Match against an ETag (RFC 9110's weak comparison, lists, `*`)."""

from __future__ import annotations

import pytest

from app.domain.conditional import none_match


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"3"', True),
        ('W/"3"', True),
        (' "3" ', True),
        ('"1", "3"', True),
        ('"1",W/"3"', True),
        ('"1", , "3"', True),  # empty list elements are allowed
        ("*", True),
        ('"1", "2"', False),
        ('"33"', False),
        ("3", False),  # not an entity tag
        ('"1" junk, "3"', False),  # not a list of entity tags: names nothing
        ("", False),
        ('"', False),
    ],
)
def test_none_match(header, matches):
    assert none_match(header, '"3"') is matches


def test_a_weak_etag_of_ours_compares_weakly_too():
    assert none_match('"3"', 'W/"3"')
