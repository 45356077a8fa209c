"""The whole schema: the tables of app/store/tables.py and the audit trail's (app/store/audit_table.py).
Alembic and the migrations' model check read `metadata` from here, so neither can miss a table."""

from __future__ import annotations

from app.store import (
    audit_table,  # noqa: F401 (defines its table on `metadata`)
    intake_tables,  # noqa: F401 (issues, schedules, triggers)
)
from app.store.tables import metadata

__all__ = ["metadata"]
