"""The CLI refuses what the API refuses, with one line naming the field and exit 65 (invalid input):
branch names, hidden characters in titles, descriptions and notes, forbidden remotes and local paths."""

from __future__ import annotations

import pytest

from tests.cli.test_commands import _env, assert_one_line_error, tg


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["project", "add", "x", "--git-url", "https://github.com/a/b.git", "--base-branch", "main^"],
            "base_branch",
        ),
        (
            [
                "project",
                "add",
                "x",
                "--git-url",
                "https://github.com/a/b.git",
                "--base-branch",
                "main\u202egnp",
            ],
            "U+202E",
        ),
        (
            [
                "project",
                "add",
                "x",
                "--git-url",
                "https://github.com/a/b.git",
                "--base-branch",
                "main:refs/heads/x",
            ],
            "base_branch",
        ),
        (["project", "add", "x", "--git-url", "https://169.254.169.254/b.git"], "metadata"),
        (
            ["project", "add", "x", "--git-url", "https://2130706433/b.git"],
            "TASKSGODZILLA_GIT_ALLOW_PRIVATE_REMOTES",
        ),
        (["project", "add", "x", "--local-path", "/proc/self"], "local path"),
        (["project", "add", "x", "--local-path", "/etc"], "local path"),
        (["protocol", "new", "demo", "Add\u202e login"], "U+202E"),
        (["protocol", "new", "demo", "Add login", "--description", "a\u200bb"], "description"),
        (["protocol", "retry", "demo/0001/01", "--note", "a\u2066b"], "note"),
        (["protocol", "approve", "demo/0001/01", "--note", "a\ufeffb"], "note"),
    ],
)
def test_hostile_options_are_refused_with_one_line(args, said, tmp_path, database_url):
    env = _env(tmp_path, database_url)
    result = tg(env, *args)
    assert_one_line_error(result, 65, said)
    assert "\u202e" not in result.stderr  # the message names the code point, never prints it
