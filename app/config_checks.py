"""The checks behind the settings' validators (app/config.py), and how a refusal reads."""

from __future__ import annotations

from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def postgres_url(value: SecretStr | None, schemes: Collection[str]) -> SecretStr | None:
    """A PostgreSQL URL, or None for an unset or blank one."""
    if value is None or not value.get_secret_value().strip():
        return None
    scheme = urlsplit(value.get_secret_value()).scheme
    if scheme not in schemes:
        raise ValueError(f"must be a PostgreSQL URL (postgresql://…), not {scheme or 'no'} scheme")
    return value


def http_url(value: str | None) -> str | None:
    """An http(s) URL with a host, without its trailing slash."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


def log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def describe(exc: ValidationError, env_name: Callable[[str], str]) -> str:
    """One line naming each refused variable and why."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        inside = ".".join(str(part) for part in error["loc"][1:])
        where = f"{env_name(field)} ({inside})" if inside else env_name(field)
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if field else message)
    return "invalid setting " + "; ".join(problems)
