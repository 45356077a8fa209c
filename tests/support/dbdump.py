"""The whole database as text, to search for what must never be stored (a secret in clear)."""

from __future__ import annotations

import psycopg

OURS = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'procrastinate%'"


def all_text(url: str) -> str:
    """Every row of every table of ours, as text."""
    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(OURS)]
        return "\n".join(
            str(row[0]) for table in tables for row in conn.execute(f'SELECT t::text FROM "{table}" t')
        )
