"""Fixtures of the fault tier: process fleets killed at teardown, whatever the test's outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.faults import Fleet


@pytest.fixture
def fleets(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Fleet]]:
    """`fleets(env)`: a new fleet of processes with that environment; all of them killed at teardown."""
    made: list[Fleet] = []

    def make(env: dict[str, str]) -> Fleet:
        root = tmp_path / f"fleet-{len(made)}"
        root.mkdir()
        made.append(Fleet(root, env))
        return made[-1]

    try:
        yield make
    finally:
        for fleet in made:
            fleet.close()
