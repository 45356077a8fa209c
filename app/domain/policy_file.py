"""A repository's own policy file (`.tasksgodzilla/policy.yml` or `.json`): untrusted text to a layer.

Anyone who can push to the repository writes this file, so it is read like hostile input: at most
`MAX_BYTES` (the git layer never loads a bigger blob), UTF-8, YAML through the safe loader after a pass
over the event stream that refuses anchors and aliases (no billion laughs), any explicit tag
(`!!python/object` and friends), nesting deeper than `MAX_DEPTH` and more than `MAX_NODES` values,
all before a single object is built; JSON with the same caps. Then the pack schema (strict: unknown
keys and wrong types refused), and no value may name a secret: a string mentioning a setting
(`TASKSGODZILLA_`) or an interpolation (`${`). A file that fails any of this is one Problem and no layer.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from app.domain.policy import REPO_LOCAL_INVALID, Problem, errors_of, validate_layer

DIRECTORY = ".tasksgodzilla"
FILE_NAMES = ("policy.yml", "policy.yaml", "policy.json")
PATHS = tuple(f"{DIRECTORY}/{name}" for name in FILE_NAMES)
MAX_BYTES = 64 * 1024
MAX_DEPTH = 12
MAX_NODES = 2000
SECRET_MARKERS = ("TASKSGODZILLA_", "${")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same rules, faster


class Refused(ValueError):
    """Why a repository policy file is not used."""


def parse_policy_file(path: str, data: bytes) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The layer `data` (the content of `path`) adds, or None and the one problem that refused it."""
    try:
        value = _load(path, data)
        _check_values(value)
        return validate_layer(value), []
    except Refused as refused:
        return None, [refused_file(path, str(refused))]
    except ValidationError as error:
        fields = "; ".join(f"{field}: {message}" for field, message in errors_of(error)[:5])
        return None, [refused_file(path, f"not a policy: {fields}")]


def refused_file(path: str, why: str) -> Problem:
    """The problem reported for a repository policy file that is not applied."""
    return Problem(REPO_LOCAL_INVALID, f"{path} is ignored ({why}); the central policy applies", path)


def _load(path: str, data: bytes) -> Any:
    if len(data) > MAX_BYTES:
        raise Refused(f"larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("not UTF-8 text") from None
    if path.endswith(".json"):
        _check_json_shape(text)
        try:
            return json.loads(text, object_pairs_hook=_unique_keys)
        except (ValueError, RecursionError) as error:
            raise Refused(f"not JSON: {str(error)[:200]}") from None
    try:
        _check_yaml_events(text)
        value = yaml.load(text, Loader=_LOADER)  # noqa: S506 - the safe loader, after the event checks
        return {} if value is None else value  # an empty file (or only comments) sets nothing
    except yaml.YAMLError as error:
        raise Refused(f"not YAML: {str(error).splitlines()[0][:200]}") from None


def _check_yaml_events(text: str) -> None:
    """Refuse anchors, aliases, tags, depth and size by reading events: nothing is constructed yet."""
    depth = nodes = documents = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise Refused("YAML anchors and aliases are not allowed")
        if getattr(event, "tag", None) is not None:  # only an explicit tag sets one
            raise Refused("YAML tags are not allowed")
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise Refused("one YAML document only")
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise Refused(f"more than {MAX_NODES} values")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_json_shape(text: str) -> None:
    """Depth and size of JSON text in one pass over its characters, before the parser recurses."""
    depth = nodes = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH}")
        elif char in "]}":
            depth -= 1
        elif char in ",:":
            nodes += 1
            if nodes > 2 * MAX_NODES:
                raise Refused(f"more than {MAX_NODES} values")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Refused("a key is repeated")
    return dict(pairs)


def _check_values(value: Any) -> None:
    """No key or text may name a setting or interpolate anything (MAX_DEPTH bounds the recursion)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(key)
            _check_values(item)
    elif isinstance(value, list):
        for item in value:
            _check_values(item)
    elif isinstance(value, str) and any(marker in value for marker in SECRET_MARKERS):
        raise Refused(f"a value refers to a setting or a variable ({value[:40]!r})")
