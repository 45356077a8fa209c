"""`project add` with a local path as its git URL says how to do it instead (issue 17)."""

from __future__ import annotations

from tests.cli.test_commands import _env, assert_one_line_error, tg
from tests.support.workflow import make_repos


def test_a_local_git_url_names_the_setting_and_the_local_path_option(tmp_path, database_url):
    repos = make_repos(tmp_path)
    env = _env(tmp_path, database_url, TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES="false")
    refused = tg(env, "project", "add", "demo", "--git-url", str(repos.origin))
    assert_one_line_error(refused, 65, "TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES")
    assert "--local-path" in refused.stderr
