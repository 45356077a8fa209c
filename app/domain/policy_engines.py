"""The engines and models a policy names for each stage, and which of its engine names are unknown.

A policy (the pack shape of app.domain.policy) names engines in five places: `engines.planning`,
`engines.execution` and `engines.qa` (`{engine, model, fallbacks}`, each fallback `{engine, model}`),
`qa.engine`/`qa.model`, and `qa.second_opinion.engine`. An engine must be one of `EngineName`;
models are free text. A name that is not an engine is refused when a pack or overrides are written,
left out (the earlier layer's value kept; a fallback dropped from its list) when layers merge, and
skipped when a stage picks its engine (the next layer decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.selection import Choice, EngineName

ENGINES = tuple(name.value for name in EngineName)
ENGINE_FIELDS = (
    "engines.planning.engine",
    "engines.execution.engine",
    "engines.qa.engine",
    "qa.engine",
    "qa.second_opinion.engine",
)
FALLBACK_LISTS = ("engines.planning.fallbacks", "engines.execution.fallbacks", "engines.qa.fallbacks")
_STAGE_SECTION = {"discovery": "planning", "planning": "planning", "execution": "execution", "qa": "qa"}
# Where a stage's defaults are, most specific first (discovery uses the planning defaults).
_STAGE_LAYERS = {
    "discovery": ("engines.planning",),
    "planning": ("engines.planning",),
    "execution": ("engines.execution",),
    "qa": ("qa", "engines.qa"),
}


def _node(policy: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node: Any = policy
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def unknown_engine_message(field: str, name: Any) -> str:
    return f"{field}: {str(name)[:80]!r} is not an engine (one of {', '.join(ENGINES)})"


def unknown_engines(policy: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dotted field, value) of each engine name in `policy` (a pack, overrides, a recorded policy)
    that is set and is not a known engine."""
    found = []
    for field in ENGINE_FIELDS:
        holder, _, leaf = field.rpartition(".")
        value = _node(policy, holder).get(leaf)
        if value is not None and value not in ENGINES:
            found.append((field, str(value)))
    for path in FALLBACK_LISTS:
        for position, item in enumerate(_list(policy, path)):
            value = item.get("engine") if isinstance(item, Mapping) else None
            if value not in ENGINES:
                found.append((f"{path}.{position}.engine", str(value)))
    return found


def policy_fallbacks(policy: Mapping[str, Any], stage: str) -> list[Choice]:
    """The policy's fallbacks for `stage`, in order; one whose engine is unknown is skipped."""
    items = _list(policy, f"engines.{_STAGE_SECTION[stage]}.fallbacks")
    return [
        Choice(item["engine"], _text(item.get("model")))
        for item in items
        if isinstance(item, Mapping) and item.get("engine") in ENGINES
    ]


def _list(policy: Mapping[str, Any], path: str) -> list[Any]:
    holder, _, leaf = path.rpartition(".")
    value = _node(policy, holder).get(leaf)
    return value if isinstance(value, list) else []


def policy_choices(policy: Mapping[str, Any], stage: str) -> list[Choice]:
    """The policy's say for `stage` as selection layers, most specific first; a layer whose engine is
    unknown says nothing (its model was meant for that engine)."""
    layers = []
    for path in _STAGE_LAYERS[stage]:
        node = _node(policy, path)
        engine, model = node.get("engine"), node.get("model")
        if engine is not None and engine not in ENGINES:
            continue
        layers.append(Choice(_text(engine), _text(model)))
    return layers


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
