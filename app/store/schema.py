"""The whole schema: app/store/tables.py's, the audit trail's and the metric counts' tables.
Alembic and the migrations' model check read `metadata` from here, so neither can miss a table."""

from __future__ import annotations

from app.store import audit_table, metric_counts  # noqa: F401 (define their tables on `metadata`)
from app.store.tables import metadata

__all__ = ["metadata"]
