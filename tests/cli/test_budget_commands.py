"""`tasksgodzilla budget raise` as an operator runs it (real processes, a real PostgreSQL)."""

from __future__ import annotations

from tests.cli.test_commands import _env, assert_one_line_error, ok, tg
from tests.support.workflow import make_repos


def test_a_budget_is_raised_by_the_local_user_and_bad_input_is_named(tmp_path, database_url):
    env = _env(tmp_path, database_url)
    repos = make_repos(tmp_path)
    ok(env, "project", "add", "shop", "--local-path", str(repos.local), "--no-wait")

    out = ok(env, "budget", "raise", "month", "5000", "--project", "shop", "--by", "alice")
    assert out.strip().startswith("month budget raised by 5000 by alice for 20")
    assert_one_line_error(tg(env, "budget", "raise", "step", "10", "--project", "shop"), 65, "scope")
    assert_one_line_error(tg(env, "budget", "raise", "month", "10"), 65, "exactly one of")
    assert_one_line_error(tg(env, "budget", "raise", "protocol", "10", "--protocol", "shop/9"), 66, "")
    refused = tg(env, "budget", "raise", "month", "-3", "--project", "shop")
    assert refused.returncode != 0
