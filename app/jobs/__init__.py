"""Durable work on PostgreSQL with Procrastinate: one thin task per job, a worker, the periodic scans."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `procrastinate --app=app.jobs.app worker` looks up `app` here; it is built on that demand only.
    if name == "app":
        from app.jobs.standalone import standalone_app

        return standalone_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
