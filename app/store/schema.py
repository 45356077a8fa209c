"""The whole schema: app/store/tables.py, the audit trail's, the metric counts' and the search indexes.
Alembic and the migrations' model check read `metadata` from here, so neither can miss a table."""

from __future__ import annotations

from app.store import (  # noqa: F401 (each defines its tables on `metadata`)
    audit_table,
    intake_tables,
    metric_counts,
    notification_tables,
    search_indexes,
)
from app.store.tables import metadata

__all__ = ["metadata"]
