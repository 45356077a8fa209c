"""`tasksgodzilla schedule add|list|delete` and `project edit --intake-label` as an operator runs them."""

from __future__ import annotations

from tests.cli.test_commands import _env, assert_one_line_error, ok, tg
from tests.support.workflow import make_repos


def test_schedules_are_added_listed_and_deleted_and_the_intake_label_is_set(tmp_path, database_url):
    env = _env(tmp_path, database_url)
    repos = make_repos(tmp_path)
    ok(env, "project", "add", "shop", "--local-path", str(repos.local), "--no-wait")

    added = ok(env, "schedule", "add", "shop", "0 6 * * 1", "--title", "Update deps")
    assert added.startswith("schedule added: 1\t0 6 * * 1\tenabled\tUpdate deps")
    assert ok(env, "schedule", "list", "shop").splitlines() == ["1\t0 6 * * 1\tenabled\tUpdate deps"]
    assert_one_line_error(tg(env, "schedule", "add", "shop", "weekly", "--title", "x"), 65, "cron")
    assert ok(env, "schedule", "delete", "shop", "1").strip() == "schedule 1 deleted"
    assert ok(env, "schedule", "list", "shop").strip() == "no schedules"
    assert_one_line_error(tg(env, "schedule", "delete", "shop", "1"), 66, "schedule 1")

    changed = ok(env, "project", "edit", "shop", "--intake-label", "agent", "--intake-blocked-label", "wait")
    assert changed.strip() == "project shop changed: intake_blocked_label, intake_label"
    assert_one_line_error(
        tg(env, "project", "edit", "shop", "--intake-label", "a\u202eb"), 65, "intake_label"
    )
