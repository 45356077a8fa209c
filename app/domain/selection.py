"""Which engine and model run a stage: the step's own choice, then the run's, the project's, the defaults.

The first layer that names an engine decides it. The model comes from that same layer, or from the
next layers that chose the same engine; a model chosen for another engine is never carried over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class EngineName(StrEnum):
    CODEX = "codex"
    CLAUDE = "claude"
    COMMAND = "command"


@dataclass(frozen=True)
class Choice:
    """One layer's say: either may be None (no opinion)."""

    engine: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class EngineChoice:
    engine: str
    model: str | None
    # What to try next, in order, when this one fails for an engine reason (app.domain.fallbacks).
    fallbacks: tuple[EngineChoice, ...] = ()


def choose_engine(layers: Sequence[Choice], default: EngineChoice) -> EngineChoice:
    """Resolve `layers` (most specific first) against the settings' `default`."""
    candidates = [*layers, Choice(default.engine, default.model)]
    # The engine in force at each layer: its own, or the one of the layers below it.
    in_force: list[str] = []
    for layer in reversed(candidates):
        in_force.insert(0, layer.engine or (in_force[0] if in_force else default.engine))
    engine = in_force[0]
    model = next(
        (
            layer.model
            for layer, owner in zip(candidates, in_force, strict=True)
            if layer.model and owner == engine
        ),
        None,
    )
    return EngineChoice(engine=engine, model=model)
