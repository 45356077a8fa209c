"""Policy packs: their shape, how layers of policy merge into the effective policy, and its hash.

A pack (central, stored in `policy_packs.pack`), a project's overrides and a repository's own file
all have one shape (`PolicyPack`); in overrides and repository files every field is optional.
Precedence, later wins: central pack → project overrides → repository file. A field the pack (or an
override) lists in `locked` cannot be loosened by a later layer: a list may only grow, a number
limit only go down (and never back to "no limit"), `qa.strictness` only rise, anything else not
change. A refused value is left out and reported as a `Problem`; the rest of the layer applies.
So is an engine name that is not an engine (app.domain.policy_engines): the earlier layer's applies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.domain.fallbacks import MAX_FALLBACKS
from app.domain.policy_engines import unknown_engine_message, unknown_engines
from app.domain.visible import VisibleLine, VisibleText

Text: Any = Field(default=None, max_length=200)
ShortList: Any = Field(default_factory=list, max_length=100)
STRICTNESS = ("lenient", "normal", "strict")

# Problem codes (the findings catalogue turns each into a finding of the same code).
PACK_INVALID = "policy.pack_invalid"
REPO_LOCAL_INVALID = "policy.repo_local_invalid"
OVERRIDE_REFUSED = "policy.override_refused"  # a layer, or one of its fields, not applied
UNKNOWN_ENGINE = "policy.unknown_engine"  # a layer names an engine that does not exist


@dataclass(frozen=True)
class Problem:
    """Why part of a policy layer was not applied; iterates as (code, message)."""

    code: str
    message: str
    field: str | None = None  # the dotted field concerned, when there is one

    def __iter__(self) -> Iterator[str]:
        return iter((self.code, self.message))


class _Shape(BaseModel):
    # Strict: a misspelt key or a string where a number belongs is refused, never coerced or dropped.
    model_config = ConfigDict(extra="forbid", strict=True)


class EngineChoice(_Shape):
    engine: VisibleLine | None = Text
    model: VisibleLine | None = Text


class FallbackChoice(_Shape):
    engine: VisibleLine = Field(max_length=200)
    model: VisibleLine | None = Text


class StageEngines(EngineChoice):
    fallbacks: list[FallbackChoice] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        description="Tried in order when the stage's agent fails for an engine reason (crash, timeout, "
        "rate limit, unavailable model)",
    )


class PlanPolicy(_Shape):
    required_sections: list[VisibleLine] = ShortList
    max_steps: int | None = Field(default=None, ge=1, le=500)


class StepsPolicy(_Shape):
    required_sections: list[VisibleLine] = ShortList


class ChecksPolicy(_Shape):
    required: list[VisibleLine] = Field(
        default_factory=list, max_length=50, description="Commands QA must see pass"
    )


class QaPolicy(_Shape):
    engine: VisibleLine | None = Text
    model: VisibleLine | None = Text
    strictness: Literal["lenient", "normal", "strict"] = "normal"
    second_opinion: EngineChoice | None = None


class EnginesPolicy(_Shape):
    planning: StageEngines = Field(default_factory=StageEngines)
    execution: StageEngines = Field(default_factory=StageEngines)
    qa: StageEngines = Field(default_factory=StageEngines)


class LimitsPolicy(_Shape):
    tokens_per_step: int | None = Field(default=None, ge=1)
    tokens_per_protocol: int | None = Field(default=None, ge=1)
    usd_per_protocol: float | None = Field(default=None, ge=0)

    @field_validator("usd_per_protocol", mode="before")
    @classmethod
    def _whole_dollars(cls, value: Any) -> Any:
        # Strict mode refuses an int for a float: `5` dollars is a fine amount.
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class GitPolicy(_Shape):
    commit_convention: VisibleLine | None = Text


class PathsPolicy(_Shape):
    forbidden: list[VisibleLine] = Field(
        default_factory=list, max_length=100, description="Globs agents must not touch"
    )


class FindingsPolicy(_Shape):
    blocking: list[VisibleLine] = Field(
        default_factory=list, max_length=100, description="Codes that block in strict mode"
    )


class OnboardingQuestion(_Shape):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    question: VisibleLine = Field(min_length=1, max_length=500)
    required: bool = False


class OnboardingPolicy(_Shape):
    questions: list[OnboardingQuestion] = Field(default_factory=list, max_length=50)


class PolicyPack(_Shape):
    """A policy pack; also the shape of project overrides and repository files (all optional there)."""

    description: VisibleText = Field(default="", max_length=2000)
    plan: PlanPolicy = Field(default_factory=PlanPolicy)
    steps: StepsPolicy = Field(default_factory=StepsPolicy)
    checks: ChecksPolicy = Field(default_factory=ChecksPolicy)
    qa: QaPolicy = Field(default_factory=QaPolicy)
    engines: EnginesPolicy = Field(default_factory=EnginesPolicy)
    limits: LimitsPolicy = Field(default_factory=LimitsPolicy)
    git: GitPolicy = Field(default_factory=GitPolicy)
    paths: PathsPolicy = Field(default_factory=PathsPolicy)
    findings: FindingsPolicy = Field(default_factory=FindingsPolicy)
    onboarding: OnboardingPolicy = Field(default_factory=OnboardingPolicy)
    auto_merge: bool = False
    locked: list[str] = Field(
        default_factory=list, max_length=100, description="Dotted fields later layers cannot loosen"
    )

    @field_validator("locked")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        for path in value:
            if path not in LOCKABLE:
                raise ValueError(f"locked: {path[:80]!r} is not a field of a policy pack")
        return value


def _leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of the fields that hold values (a nested section is walked, not a leaf)."""
    found = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _leaves(annotation, f"{prefix}{name}.")
        else:
            found.append(prefix + name)
    return found


LEAVES = tuple(path for path in _leaves(PolicyPack) if path not in ("locked", "description"))
SECTIONS = tuple(dict.fromkeys(path.rsplit(".", 1)[0] for path in LEAVES if "." in path))
LOCKABLE = frozenset(LEAVES) | frozenset(SECTIONS)
_LOWER_IS_TIGHTER = {
    "limits.tokens_per_step",
    "limits.tokens_per_protocol",
    "limits.usd_per_protocol",
    "plan.max_steps",
}


def pack_schema() -> dict[str, Any]:
    """The JSON Schema of a pack (what `GET /policy_packs/schema` publishes)."""
    return PolicyPack.model_json_schema()


def validate_pack(data: Any) -> dict[str, Any]:
    """`data` as a complete pack, every section present; a pydantic ValidationError when it is not one."""
    return PolicyPack.model_validate(data).model_dump(mode="json")


def validate_layer(data: Any) -> dict[str, Any]:
    """`data` as overrides or a repository file: only the fields it sets, each checked and complete
    (a value that is itself an object, such as `qa.second_opinion`, has its defaults filled)."""
    model = PolicyPack.model_validate(data)
    given, full = model.model_dump(mode="json", exclude_unset=True), model.model_dump(mode="json")
    layer: dict[str, Any] = {}
    for path in (*LEAVES, "description", "locked"):
        if _get(given, path)[0]:
            *parents, last = path.split(".")
            node = layer
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = _get(full, path)[1]
    return layer


def errors_of(error: ValidationError) -> list[tuple[str, str]]:
    """A validation error as (dotted field, message) pairs."""
    return [(".".join(str(part) for part in item["loc"]) or "pack", item["msg"]) for item in error.errors()]


def merge(
    pack: Any, project_overrides: Any = None, repo_local: Any = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The effective policy (every section present) and what could not be applied.

    Layers, later wins: `pack` → `project_overrides` → `repo_local` (None or {} adds nothing). A
    layer that is not a valid pack shape is ignored whole and reported; a locked field a layer would
    loosen keeps its earlier value and is reported.
    """
    problems: list[Problem] = []
    try:
        effective = validate_pack(pack)
    except ValidationError as error:
        problems += [Problem(PACK_INVALID, f"the pack is invalid: {f}: {m}", f) for f, m in errors_of(error)]
        effective = validate_pack({})
    problems += _drop_unknown_engines(effective, "pack", keep_key=True)
    for name, code, layer in (
        ("project overrides", OVERRIDE_REFUSED, project_overrides),
        ("repository policy file", REPO_LOCAL_INVALID, repo_local),
    ):
        if not layer:
            continue
        try:
            partial = validate_layer(layer)
        except ValidationError as error:
            problems += [Problem(code, f"{name}: {f}: {m}", f) for f, m in errors_of(error)]
            continue
        problems += _drop_unknown_engines(partial, name)
        problems += _apply(effective, partial, name)
    return validate_pack(effective), problems


def _drop_unknown_engines(data: dict[str, Any], layer: str, *, keep_key: bool = False) -> list[Problem]:
    """Take the unknown engine names out of `data` (set to None with `keep_key`, else removed so the
    earlier layer's value stays; a second opinion or a fallback goes whole: its model was for that
    engine)."""
    problems: list[Problem] = []
    for field, value in reversed(unknown_engines(data)):  # from the end: list positions stay right
        problems.insert(0, Problem(UNKNOWN_ENGINE, f"{layer}: {unknown_engine_message(field, value)}", field))
        if ".fallbacks." in field:  # a fallback goes whole, from the list: its model was for that engine
            holder, _, position = field.removesuffix(".engine").rpartition(".")
            _get(data, holder)[1].pop(int(position))
            continue
        if field == "qa.second_opinion.engine" and not keep_key:
            data["qa"].pop("second_opinion")
            continue
        holder, _, leaf = field.rpartition(".")
        node = _get(data, holder)[1]
        if keep_key:
            node[leaf] = None
        else:
            node.pop(leaf)
    return problems


def _apply(effective: dict[str, Any], partial: dict[str, Any], layer: str) -> list[Problem]:
    problems = []
    locks = set(effective["locked"])
    for path in LEAVES:
        present, new = _get(partial, path)
        if not present:
            continue
        old = _get(effective, path)[1]
        if _is_locked(path, locks) and _loosens(path, old, new):
            problems.append(
                Problem(OVERRIDE_REFUSED, f"{layer}: {path} is locked and cannot be loosened", path)
            )
            continue
        _set(effective, path, new)
    if "description" in partial:
        effective["description"] = partial["description"]
    # Locks accumulate: a later layer may add one, never lift one.
    effective["locked"] = list(dict.fromkeys([*effective["locked"], *partial.get("locked", [])]))
    return problems


def loosened_fields(pack: Any, overrides: Any) -> list[str]:
    """The locked fields of `pack` that `overrides` would loosen (what a project may not save); a
    ValidationError when `overrides` is not a valid layer at all."""
    validate_layer(overrides)
    return [p.field for p in merge(pack, overrides)[1] if p.code == OVERRIDE_REFUSED and p.field is not None]


def _is_locked(path: str, locks: set[str]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:i]) in locks for i in range(1, len(parts) + 1))


def _loosens(path: str, old: Any, new: Any) -> bool:
    if isinstance(old, list):
        return not all(item in new for item in old)
    if path in _LOWER_IS_TIGHTER:
        return old is not None and (new is None or new > old)  # no limit yet: any limit is tighter
    if path == "qa.strictness":
        return STRICTNESS.index(new) < STRICTNESS.index(old)
    return bool(new != old)


def _get(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value


def canonical_json(effective: dict[str, Any]) -> str:
    """The policy as JSON with sorted keys and no whitespace: one text per policy."""
    return json.dumps(effective, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def policy_hash(effective: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON: the same policy hashes the same, whatever its key order."""
    return hashlib.sha256(canonical_json(effective).encode()).hexdigest()
