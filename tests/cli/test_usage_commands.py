"""`tasksgodzilla usage` and the usage lines of `protocol status`, as an operator runs them."""

from __future__ import annotations

import json

from app.store import projects, protocols, steps
from tests.cli.test_commands import _env, assert_one_line_error, ok, tg
from tests.support.usage_seed import seed_usage
from tests.support.workflow import make_repos


async def test_usage_per_stage_day_and_model_unknown_costs_apart(tmp_path, database_url, database):
    env = _env(tmp_path, database_url)
    repos = make_repos(tmp_path)
    ok(env, "project", "add", "shop", "--local-path", str(repos.local), "--no-wait")
    ok(env, "protocol", "new", "shop", "Tidy up")
    async with database.transaction() as conn:
        [project] = await projects.list_page(conn, before_id=None, limit=5)
        [run] = await protocols.list_for_project(conn, project.id, limit=5)
        plan = await steps.create_many(conn, run.id, [{"step_index": 1, "name": "one", "step_file": "01.md"}])
    await seed_usage(database, run, plan)

    status = ok(env, "protocol", "status", "shop/1").splitlines()
    rows = {line.split()[0]: line for line in status if line.split()[:1] in (["planning"], ["qa"], ["total"])}
    assert rows["planning"].split()[1:3] == ["1", "1200"]
    assert rows["qa"].endswith("unknown"), "an unpriced stage's cost is unknown, not $0"
    assert rows["total"].endswith("$1.75 + 1 run of unknown cost")
    shown = json.loads(ok(env, "protocol", "status", "shop/1", "--json"))
    assert shown["usage"]["by_stage"]["qa"]["cost_usd"] is None

    by_day = ok(env, "usage", "shop", "--since", "2026-11-01", "--until", "2026-11-30").splitlines()
    assert [line.split()[0] for line in by_day[1:]] == ["2026-11-03", "2026-11-06", "total"]
    by_model = json.loads(ok(env, "usage", "shop", "--group", "model", "--json"))
    assert [(r["key"], r["totals"]["runs"]) for r in by_model["rows"]] == [
        ("(engine default)", 1),
        ("gpt-5.1", 2),
    ]
    assert "no finished agent run" in ok(env, "usage", "shop", "--until", "2026-01-01")

    assert_one_line_error(tg(env, "usage", "shop", "--since", "2026-13-01"), 65, "--since")
    assert_one_line_error(
        tg(env, "usage", "shop", "--since", "2026-11-05", "--until", "2026-11-01"), 65, "since"
    )
    assert tg(env, "usage", "shop", "--group", "week").returncode == 2
    assert_one_line_error(tg(env, "usage", "nowhere"), 66, "")
