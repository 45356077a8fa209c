"""Settings shown to people: `tasksgodzilla config` (secrets masked) and the README's reference table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic_settings import NoDecode

from app.config import Settings, env_name


def masked_settings(settings: Settings) -> dict[str, str]:
    """Every setting as `VARIABLE -> printable value`, secrets replaced by a mask."""
    shown: dict[str, str] = {}
    plain = settings.model_dump(mode="json")
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            text = mask_url(value.get_secret_value()) if field == "database_url" else "********"
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list) and NoDecode in type(settings).model_fields[field].metadata:
            text = ",".join(plain[field])  # read back split at commas: its items hold none
        elif isinstance(value, list):
            text = json.dumps(plain[field])  # read back as JSON: its items may hold commas
        elif isinstance(value, dict):
            text = json.dumps(plain[field], separators=(",", ":"))
        else:
            text = "" if value is None else str(value)
        shown[env_name(field)] = text
    return shown


def settings_reference() -> str:
    """Every setting as a Markdown table row: variable, default, meaning (for the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            factory: Any = field.default_factory
            default = _shown_default(factory())
        else:
            default = _shown_default(field.default)
        rows.append(f"| `{env_name(name)}` | {default} | {field.description} |")
    return "\n".join(rows)


def _shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return "see meaning"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "see meaning" if len(value) > 4 else f"`{','.join(value)}`"
    if isinstance(value, dict):
        return "see meaning" if value else "`{}`"
    return f"`{value}`"


def mask_url(url: str) -> str:
    """A URL with its password replaced, safe for logs and screens."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
