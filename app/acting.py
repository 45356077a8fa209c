"""Who the current request or command acts for: set once where it is authenticated, read where an
event is written (app/store/events.py), like the correlation id in app/logs.py.

A job runs with no actor: what it writes is the service's own doing, not an operator action.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from app.domain.actors import Actor

_ACTOR: ContextVar[Actor | None] = ContextVar("tasksgodzilla_actor", default=None)


def current_actor() -> Actor | None:
    return _ACTOR.get()


@contextmanager
def acting_as(actor: Actor | None) -> Iterator[Actor | None]:
    """Every event written inside names `actor` (None: no one, for work the service does itself)."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def name_current(actor: Actor) -> None:
    """Replace the current actor by the same one with its label looked up, for the rest of the
    request (the enclosing `acting_as` still restores what came before it)."""
    _ACTOR.set(actor)
