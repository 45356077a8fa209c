"""Trigram indexes (pg_trgm, migration 0021) of protocol runs' titles and names: a search
(`ILIKE '%q%'`, app/store/protocols.py) reads the runs it finds, not every run of the project."""

from __future__ import annotations

from sqlalchemy import Index

from app.store.tables import protocol_runs

TRIGRAM_INDEXES = [
    Index(
        f"ix_protocol_runs_{name}_trgm",
        protocol_runs.c[name],
        postgresql_using="gin",
        postgresql_ops={name: "gin_trgm_ops"},
    )
    for name in ("title", "name")
]
