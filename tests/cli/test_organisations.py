"""`tasksgodzilla org …` and `project add --org` as an operator runs them (real processes, a real
PostgreSQL)."""

from __future__ import annotations

import hashlib
import json

import psycopg

from tests.cli.test_commands import _env, assert_one_line_error, ok, tg
from tests.support.workflow import make_repos


def test_organisations_are_created_listed_and_given_tokens(tmp_path, database_url):
    env = _env(tmp_path, database_url)
    assert ok(env, "org", "add", "Acme Ltd").startswith("organisation acme-ltd created (id ")
    listed = json.loads(ok(env, "org", "list", "--json"))
    assert [o["slug"] for o in listed] == ["default", "acme-ltd"]

    issued = tg(env, "org", "token", "acme-ltd")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("tgo_")
    assert "shown once" in issued.stderr
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT token_hash FROM organisations WHERE slug = 'acme-ltd'").fetchone()[0]
    assert stored == hashlib.sha256(token.encode()).hexdigest(), "only the token's hash is kept"

    repos = make_repos(tmp_path)
    out = ok(
        env, "project", "add", "shop", "--local-path", str(repos.local), "--org", "acme-ltd", "--no-wait"
    )
    assert "project shop registered" in out
    with psycopg.connect(database_url) as conn:
        owner = conn.execute(
            "SELECT o.slug FROM projects p JOIN organisations o ON o.id = p.organisation_id "
            "WHERE p.name = 'shop'"
        ).fetchone()[0]
    assert owner == "acme-ltd"

    assert_one_line_error(tg(env, "org", "add", "Ac\u202eme"), 65, "invisible")
    assert_one_line_error(tg(env, "org", "add", "Acme Ltd"), 75, "exists already")
    assert_one_line_error(tg(env, "org", "token", "nobody"), 66, "no organisation 'nobody'")
    missing = tg(env, "project", "add", "x", "--local-path", str(repos.local), "--org", "nobody")
    assert_one_line_error(missing, 66, "no organisation 'nobody'")
