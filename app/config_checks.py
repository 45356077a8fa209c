"""The checks behind the settings' validators (app/config.py), and how a refusal reads."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
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


def absolute_folders(value: list[Path] | None) -> list[Path] | None:
    relative = [str(root) for root in value or () if not root.is_absolute()]
    if relative:
        raise ValueError(f"must be absolute folders, not {', '.join(relative)}")
    return value


def strong_secret(value: SecretStr | None, min_length: int) -> SecretStr | None:
    """An empty value would silently mean "no token" (an open API, an unsigned console): refused."""
    if value is not None and len(value.get_secret_value()) < min_length:
        raise ValueError(f"must be at least {min_length} characters (e.g. `openssl rand -hex 32`)")
    return value


def ordered(settings: Any, prefix: str) -> None:
    """Settings that only make sense in a given order of size."""
    if settings.stalled_after_seconds <= 2 * settings.worker_heartbeat_seconds:
        raise ValueError(f"{prefix}STALLED_AFTER_SECONDS must exceed twice {prefix}WORKER_HEARTBEAT_SECONDS")
    if settings.retry_backoff_max_seconds < settings.retry_backoff_seconds:
        raise ValueError(f"{prefix}RETRY_BACKOFF_MAX_SECONDS must be at least {prefix}RETRY_BACKOFF_SECONDS")
