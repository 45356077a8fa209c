"""The tighter of a setting and the run's policy is the ceiling; the setting on a tie."""

from __future__ import annotations

import pytest

from app.domain.usage import Ceiling, tighter

SETTING, POLICY = "setting X", "policy default@1.0 limits.x"


@pytest.mark.parametrize(
    ("setting", "policy", "expected"),
    [
        (None, None, None),
        (100, None, Ceiling("step", 100, SETTING)),
        (None, 200, Ceiling("step", 200, POLICY)),
        (100, 200, Ceiling("step", 100, SETTING)),
        (300, 200, Ceiling("step", 200, POLICY)),
        (200, 200, Ceiling("step", 200, SETTING)),
        (0.5, 0, Ceiling("step", 0, POLICY)),
    ],
)
def test_the_tighter_limit_applies_with_its_source(setting, policy, expected):
    assert tighter("step", (setting, SETTING), (policy, POLICY)) == expected
