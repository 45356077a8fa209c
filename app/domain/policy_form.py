"""The console's policy form: its text fields to a project's policy selection, and back.

The form offers a few common override fields and, below them, the whole overrides as JSON. One rule
decides between them: when the JSON box says something other than what the page showed (compared as
JSON, so whitespace does not count), the JSON is the overrides, as written, and the fields are
ignored; otherwise each field is applied over that JSON (a filled field sets its value, a blank one
removes it, so the pack's value applies). Nothing here checks the overrides against the pack shape:
the service does that, naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Field name (at most one section deep) → kind: "lines" (one per line), "sections" (commas or
# lines), "number", "choice", "flag".
FIELDS: dict[str, str] = {
    "plan.required_sections": "sections",
    "plan.max_steps": "number",
    "checks.required": "lines",
    "findings.blocking": "sections",
    "qa.strictness": "choice",
    "limits.tokens_per_step": "number",
    "auto_merge": "flag",
}
JSON_FIELD = "overrides_json"
SHOWN_FIELD = "overrides_shown"  # the overrides the page showed, compact JSON: "edited" is against it
VERSION_PREFIX = "pack_version."  # one version select per pack key; the chosen key's is read
MAX_JSON_CHARS = 64 * 1024
_SPLIT = {"lines": re.compile(r"[\r\n]+"), "sections": re.compile(r"[\r\n,]+")}
_FLAGS = {"true": True, "false": False}


class PolicyFormError(ValueError):
    """A form value that cannot be read; `field` is its form field name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = f"{field}: {message}"


@dataclass(frozen=True)
class PolicySelection:
    """What the form asks for: a pack key, a version (None: the latest active), overrides and modes."""

    pack_key: str
    pack_version: str | None
    overrides: dict[str, Any]
    strict: bool
    repo_local_enabled: bool
    json_won: bool  # the JSON box was edited, so the fields were not read


def selection_from_form(values: Mapping[str, str]) -> PolicySelection:
    """The selection the posted form (`values`, text, blank fields left out) makes; a
    PolicyFormError naming the field when one cannot be read."""
    pack_key = values.get("pack_key", "")
    if not pack_key:
        raise PolicyFormError("pack_key", "choose a pack")
    written = _json_object(JSON_FIELD, values.get(JSON_FIELD, "") or "{}")
    try:
        shown = _json_object(SHOWN_FIELD, values.get(SHOWN_FIELD, "") or "{}")
    except PolicyFormError:
        shown = None  # not what a page of ours sent: take the JSON box as edited
    json_won = written != shown
    return PolicySelection(
        pack_key=pack_key,
        pack_version=values.get(VERSION_PREFIX + pack_key) or None,
        overrides=written if json_won else apply_fields(written, values),
        strict=values.get("strict") == "true",
        repo_local_enabled=values.get("repo_local_enabled") == "true",
        json_won=json_won,
    )


def apply_fields(overrides: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """`overrides` with each form field applied: a filled one set, a blank one removed (a section
    left empty is removed too)."""
    result = json.loads(json.dumps(overrides))  # a deep copy: the caller's stays as it was
    for name, kind in FIELDS.items():
        raw = values.get(name, "").strip()
        section, _, last = name.rpartition(".")
        node = result
        if section:
            if not isinstance(result.get(section), dict):
                result[section] = {}
            node = result[section]
        if raw:
            node[last] = _value(name, kind, raw)
        else:
            node.pop(last, None)
        if section and not node:
            del result[section]
    return result


def form_values(overrides: Mapping[str, Any]) -> dict[str, str]:
    """The form's text for `overrides`: each field as shown in its input, and the JSON twice (the box,
    and what the page showed)."""
    shown: dict[str, str] = {}
    for name, kind in FIELDS.items():
        value: Any = overrides
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        shown[name] = _text(kind, value)
    shown[JSON_FIELD] = json.dumps(overrides, indent=2, sort_keys=True, ensure_ascii=False)
    shown[SHOWN_FIELD] = json.dumps(overrides, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return shown


def _json_object(field: str, text: str) -> dict[str, Any]:
    if len(text) > MAX_JSON_CHARS:
        raise PolicyFormError(field, f"longer than {MAX_JSON_CHARS} characters")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise PolicyFormError(field, f"not valid JSON ({str(error)[:120]})") from None
    if not isinstance(value, dict):
        raise PolicyFormError(field, "must be a JSON object ({...})")
    return value


def _value(name: str, kind: str, raw: str) -> Any:
    if kind in _SPLIT:
        return [item.strip() for item in _SPLIT[kind].split(raw) if item.strip()]
    if kind == "number":
        if not (raw.isascii() and raw.isdigit() and len(raw) < 16):
            raise PolicyFormError(name, f"a whole number, not {raw[:40]!r}")
        return int(raw)
    if kind == "flag":
        if raw not in _FLAGS:
            raise PolicyFormError(name, "true, false or blank (the pack's)")
        return _FLAGS[raw]
    return raw


def _text(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind in _SPLIT and isinstance(value, list):
        return "\n".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
