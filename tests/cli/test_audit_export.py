"""`tasksgodzilla audit export` and the CLI's actor: real processes, a real PostgreSQL, a real repository."""

from __future__ import annotations

import getpass
import json

from tests.cli.test_commands import _env, ok, tg
from tests.support.workflow import make_repos


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_cli_actions_name_the_os_user_and_export_as_json_lines(tmp_path, database_url):
    repos = make_repos(tmp_path)
    env = _env(tmp_path, database_url)
    ok(env, "org", "add", "Audit Guild", "--slug", "audit-guild")
    ok(env, "project", "add", "audited-cli", "--local-path", str(repos.local), "--org", "audit-guild")
    ok(env, "org", "token", "audit-guild")

    rows = [
        r for r in _lines(ok(env, "audit", "export")) if r["payload"].get("actor", {}).get("via") == "cli"
    ]
    user = getpass.getuser()
    kinds = [r["event_type"] for r in rows]
    assert {"organisation.created", "project.created", "organisation.token_issued"} <= set(kinds), kinds
    for row in rows:
        assert (row["actor_kind"], row["actor_id"], row["via"]) == ("cli", user, "cli")
        assert row["payload"]["actor"] == {
            "kind": "cli",
            "id": user,
            "label": f"{user} (local)",
            "via": "cli",
        }
    [created] = [r for r in rows if r["event_type"] == "project.created"]
    assert created["project_name"] == "audited-cli"
    assert created["organisation_id"] == next(
        r["organisation_id"] for r in rows if r["event_type"] == "organisation.created"
    )

    only = _lines(ok(env, "audit", "export", "--project", "audited-cli"))
    assert only
    assert {r["project_id"] for r in only} == {created["project_id"]}
    by_id = _lines(ok(env, "audit", "export", "--project", str(created["project_id"]), "--kind", "project."))
    assert [r["event_type"] for r in by_id] == ["project.created"]
    assert ok(env, "audit", "export", "--since", "2999-01-01T00:00Z") == ""
    assert _lines(ok(env, "audit", "export", "--since", "2000-01-01T00:00Z")) == _lines(
        ok(env, "audit", "export")
    )


def test_a_bad_since_is_a_one_line_error(tmp_path, database_url):
    env = _env(tmp_path, database_url)
    for given, said in (("yesterday", "not an ISO 8601 time"), ("2026-01-01T00:00", "give its time zone")):
        result = tg(env, "audit", "export", "--since", given)
        assert result.returncode != 0
        assert said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
