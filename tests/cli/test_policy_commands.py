"""`tasksgodzilla policy …` as an operator runs it (real processes, a real PostgreSQL)."""

from __future__ import annotations

import json

from tests.cli.test_commands import _env, assert_one_line_error, ok, tg
from tests.support.workflow import make_repos


def test_a_project_is_put_on_a_pack_and_its_effective_policy_shown(tmp_path, database_url):
    env = _env(tmp_path, database_url)
    listed = ok(env, "policy", "list")
    assert {"default", "strict", "starter"} <= {line.split()[0] for line in listed.splitlines()[1:]}
    assert json.loads(ok(env, "policy", "show", "strict"))[0]["pack"]["auto_merge"] is False

    repos = make_repos(tmp_path)
    ok(env, "project", "add", "shop", "--local-path", str(repos.local), "--no-wait")
    overrides = tmp_path / "overrides.json"
    overrides.write_text('{"plan": {"max_steps": 5}}')
    out = ok(env, "policy", "set", "shop", "--pack", "strict@1.0", "--strict", "--overrides", str(overrides))
    assert out.strip() == "project shop: pack strict@1.0, strict True"
    shown = json.loads(ok(env, "policy", "effective", "shop"))
    assert shown["pack"] == "strict@1.0"
    assert shown["policy"]["plan"]["max_steps"] == 5
    assert len(shown["hash"]) == 64

    overrides.write_text('{"auto_merge": true}')
    refused = tg(env, "policy", "set", "shop", "--pack", "strict", "--overrides", str(overrides))
    assert_one_line_error(refused, 65, "locked")
    overrides.write_text("[1]")
    assert_one_line_error(
        tg(env, "policy", "set", "shop", "--pack", "strict", "--overrides", str(overrides)), 65, "JSON object"
    )
    assert_one_line_error(tg(env, "policy", "set", "shop", "--pack", "nope"), 65, "no active policy pack")
    assert_one_line_error(tg(env, "policy", "show", "nope"), 66, "no policy pack")


def test_the_packs_setup_questions_are_answered_from_the_command_line(tmp_path, database_url):
    env = _env(tmp_path, database_url)
    repos = make_repos(tmp_path)
    ok(env, "project", "add", "shop", "--local-path", str(repos.local), "--no-wait")
    refused = tg(env, "project", "answer", "shop", "goal=docs")
    assert_one_line_error(refused, 65, "'goal' is not a setup question of this project")  # default asks none
    ok(env, "policy", "set", "shop", "--pack", "starter")
    answered = ok(env, "project", "answer", "shop", "test_command=pytest -q", "goal=docs first")
    assert answered.strip().startswith("project shop is ")
    too_long = tg(env, "project", "answer", "shop", "goal=" + "x" * 501)
    assert_one_line_error(too_long, 65, "goal: at most 500 characters")
