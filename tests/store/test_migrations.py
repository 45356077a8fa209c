"""Migrations and models agree; upgrade → downgrade → upgrade works; the job queue's schema is live."""

from __future__ import annotations

import asyncio

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from app.domain.policy import validate_pack
from app.store import migrate
from app.store.database import with_driver
from app.store.schema import metadata


def _schema_objects(url: str) -> dict[str, set[str]]:
    with psycopg.connect(with_driver(url, None)) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        functions = {
            r[0]
            for r in conn.execute(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"
            )
        }
        types = {
            r[0]
            for r in conn.execute(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'c') AND t.typrelid = 0"
            )
        }
    return {"tables": tables, "functions": functions, "types": types}


def _diff(url: str) -> list:
    engine = create_engine(with_driver(url, "psycopg"))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_object": lambda obj, name, *_: not (name or "").startswith("procrastinate_"),
                },
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url):
    assert _diff(database_url) == []


def test_upgrade_downgrade_upgrade(empty_database_url):
    url = empty_database_url
    migrate.upgrade(url)
    at_head = _schema_objects(url)
    assert {"projects", "protocol_runs", "step_runs", "events", "agent_runs", "policy_packs"} <= at_head[
        "tables"
    ]
    assert "procrastinate_jobs" in at_head["tables"]

    migrate.downgrade(url, "base")
    emptied = _schema_objects(url)
    assert emptied == {"tables": {"alembic_version"}, "functions": set(), "types": set()}

    migrate.upgrade(url)
    assert _schema_objects(url) == at_head
    assert _diff(url) == []


def test_the_seeded_policy_packs_are_valid_packs(database_url):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT key, version, status, pack FROM policy_packs ORDER BY key").fetchall()
    assert [(key, version, status) for key, version, status, _ in rows] == [
        ("default", "1.0", "active"),
        ("starter", "1.0", "active"),
        ("strict", "1.0", "active"),
    ]
    packs = {key: validate_pack(pack) for key, _, _, pack in rows}
    assert packs["default"]["plan"]["required_sections"] == []
    assert packs["strict"]["auto_merge"] is False
    assert packs["strict"]["qa"]["second_opinion"] is not None
    assert "paths.forbidden" in packs["strict"]["locked"]


def test_existing_projects_get_the_default_pack_and_deprecated_packs_are_retired(empty_database_url):
    """0014: a project without a pack is put on default@1.0; a new one gets `default`, latest active."""
    url = empty_database_url
    migrate.upgrade(url, "0013")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projects (name, local_path, organisation_id)"
            " SELECT 'old', '/srv/old', min(id) FROM organisations"
        )
        conn.execute(
            "INSERT INTO policy_packs (key, version, name, status)"
            " VALUES ('legacy', '0.1', 'Legacy', 'deprecated')"
        )
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projects (name, local_path, organisation_id)"
            " SELECT 'new', '/srv/new', min(id) FROM organisations"
        )
        projects = conn.execute(
            "SELECT name, policy_pack_key, policy_pack_version, policy_strict FROM projects ORDER BY id"
        ).fetchall()
        legacy = conn.execute("SELECT status FROM policy_packs WHERE key = 'legacy'").fetchone()
    assert projects == [("old", "default", "1.0", False), ("new", "default", None, False)]
    assert legacy == ("retired",)


def test_procrastinate_can_use_the_migrated_schema(database_url):
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))

    @app.task(name="probe", queue="probe")
    def probe(value: int) -> None:  # never run: only deferred
        pass

    async def defer_and_count() -> int:
        async with app.open_async():
            job_id = await probe.defer_async(value=3)
            jobs = await app.job_manager.list_jobs_async(id=job_id)
            return len(jobs)

    assert asyncio.run(defer_and_count()) == 1


def test_migrations_form_one_line():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [migrate.head_revision()]
    assert [r.down_revision for r in script.walk_revisions()][-1] is None


def test_clone_paths_stored_by_setup_are_forgotten(empty_database_url):
    """0013: a clone's path, which setup used to store as `local_path`, is derived again; a path the
    operator registered stays (the `project.created` event tells the two apart)."""
    url = empty_database_url
    migrate.upgrade(url, "0010")
    rows = [
        # name, git_url, local_path now, local_path when registered (None: by URL)
        ("cloned", "https://example.com/a.git", "/data/projects/cloned/repo", None),
        ("both", "https://example.com/b.git", "/home/op/b", "/home/op/b"),
        ("local", None, "/home/op/c", "/home/op/c"),
        ("fresh", "https://example.com/d.git", None, None),
        ("old", "https://example.com/e.git", "/srv/tg/projects/old/repo", "no event"),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for name, git_url, local_path, registered in rows:
            (project_id,) = conn.execute(
                "INSERT INTO projects (name, git_url, local_path) VALUES (%s, %s, %s) RETURNING id",
                (name, git_url, local_path),
            ).fetchone()
            if registered != "no event":
                conn.execute(
                    "INSERT INTO events (project_id, event_type, payload) VALUES (%s, 'project.created', %s)",
                    (project_id, psycopg.types.json.Jsonb({"name": name, "local_path": registered})),
                )
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        after = dict(conn.execute("SELECT name, local_path FROM projects").fetchall())
    assert after == {
        "cloned": None,
        "both": "/home/op/b",
        "local": "/home/op/c",
        "fresh": None,
        "old": None,  # no event: the path has the shape of a clone's
    }
