"""Outside input is refused before git runs, with a clear error naming the field, and nothing is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InvalidInputError
from app.git import GitRepository, check_branch_name, check_remote_name, check_remote_url, check_revision
from tests.git.gitutil import Origin, git

BAD_BRANCHES = [
    "-x",
    "--force",
    "a..b",
    "with\nnewline",
    "a b",
    "tab\there",
    "nul\x00byte",
    "@{-1}",
    "x@{u}",
    "HEAD",
    "",
    "a" * 201,
    "ends.lock",
    "a~1",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "back\\slash",
    "/leading",
    "trailing/",
    "double//slash",
    "dot/.hidden",
    "ends.",
]

GOOD_BRANCHES = ["0007-add-login", "tg/0007-add-login", "feature/x_y.z", "a" * 200, "UPPER-case"]


@pytest.mark.parametrize("name", BAD_BRANCHES, ids=repr)
def test_bad_branch_names_are_refused(name: str):
    with pytest.raises(InvalidInputError) as caught:
        check_branch_name(name)
    assert caught.value.details == {"field": "branch"}


@pytest.mark.parametrize("name", GOOD_BRANCHES)
def test_good_branch_names_pass(name: str):
    assert check_branch_name(name) == name


@pytest.mark.parametrize("name", ["-x", "a..b", "with\nnewline", "a b"], ids=repr)
async def test_worktree_add_with_a_bad_branch_creates_nothing(clone: GitRepository, tmp_path: Path, name):
    branches_before = git("for-each-ref", "refs/heads/", cwd=clone.path)
    target = tmp_path / "wt"
    with pytest.raises(InvalidInputError, match="branch"):
        await clone.worktree_add(target, name, "main")
    assert not target.exists()
    assert git("for-each-ref", "refs/heads/", cwd=clone.path) == branches_before
    assert git("worktree", "list", "--porcelain", cwd=clone.path).count("worktree ") == 1


@pytest.mark.parametrize("name", ["-x", "a..b", "with\nnewline", "a b"], ids=repr)
async def test_push_and_delete_with_a_bad_branch_touch_nothing(clone: GitRepository, origin: Origin, name):
    with pytest.raises(InvalidInputError):
        await clone.push(name)
    with pytest.raises(InvalidInputError):
        await clone.delete_remote_branch(name)
    assert origin.branches() == ["main"]


@pytest.mark.parametrize("base", ["-x", "--output=/tmp/x", "main..HEAD", "HEAD:README.md", "a b", ""])
async def test_bad_revisions_are_refused(clone: GitRepository, tmp_path: Path, base: str):
    with pytest.raises(InvalidInputError):
        await clone.diff_stats(base, "HEAD")
    with pytest.raises(InvalidInputError):
        await clone.worktree_add(tmp_path / "wt", "0009-x", base)
    assert not (tmp_path / "wt").exists()


@pytest.mark.parametrize(
    "remote", ["--upload-pack=touch /tmp/x", "https://example.com/r.git", "/tmp/x", "a b"]
)
async def test_remote_must_be_a_remote_name(clone: GitRepository, remote: str):
    with pytest.raises(InvalidInputError) as caught:
        await clone.fetch(remote)
    assert caught.value.details == {"field": "remote"}
    with pytest.raises(InvalidInputError):
        check_remote_name(remote)


REFUSED_URLS = [
    "ext::sh -c touch% /tmp/pwned",
    "ext::touch",
    "fd::3",
    "transport::anything",
    "file:///tmp/x",
    "/tmp/x",
    "relative/path",
    "-upload-pack=touch /tmp/x",
    "--upload-pack=touch",
    "http://example.com/r.git",
    "git://example.com/r.git",
    "ftp://example.com/r.git",
    "https://example.com/r.git\n",
    "https://example.com/r .git",
    "https://example.com/r\x00.git",
    "https://-oProxyCommand=touch/r.git",
    "ssh://-oProxyCommand=touch%20x/r.git",
    "-oProxyCommand=x@host:path",
    "https://example.com",
    "https://example.com:notaport/r.git",
    "",
]


@pytest.mark.parametrize("url", REFUSED_URLS, ids=repr)
def test_refused_urls(url: str):
    with pytest.raises(InvalidInputError) as caught:
        check_remote_url(url, allow_local=False)
    assert caught.value.details == {"field": "git_url"}


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "https://user:token@gitlab.example.com/group/sub/repo.git",
        "ssh://git@example.com:2222/org/repo.git",
        "git@github.com:org/repo.git",
    ],
)
def test_accepted_urls(url: str):
    assert check_remote_url(url, allow_local=False) == url


def test_loopback_urls_only_when_private_remotes_are_allowed():
    with pytest.raises(InvalidInputError, match="ALLOW_PRIVATE_REMOTES"):
        check_remote_url("https://[::1]:8443/r.git", allow_local=False)
    assert check_remote_url("https://[::1]:8443/r.git", allow_local=False, allow_private=True)


def test_local_urls_only_when_allowed():
    assert check_remote_url("/srv/git/r.git", allow_local=True) == "/srv/git/r.git"
    assert check_remote_url("file:///srv/git/r.git", allow_local=True) == "file:///srv/git/r.git"
    for url in ("relative/path", "ext::sh", "-x", "http://example.com/r.git"):
        with pytest.raises(InvalidInputError):
            check_remote_url(url, allow_local=True)


def test_a_refused_url_is_not_repeated_in_the_message():
    with pytest.raises(InvalidInputError) as caught:
        check_remote_url("http://user:s3cr3t-token@example.com/r.git", allow_local=False)
    assert "s3cr3t-token" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% {marker}",
        "ext::touch%{marker}",
        "file://{origin}",
        "{origin}",
        "-upload-pack=touch {marker}",
    ],
)
async def test_clone_with_a_refused_url_runs_and_creates_nothing(
    url: str, origin: Origin, tmp_path: Path, base_env
):
    marker = tmp_path / "pwned"
    dest = tmp_path / "clones" / "dest"
    with pytest.raises(InvalidInputError):
        await GitRepository.clone(
            url.format(marker=marker, origin=origin.path), dest, timeout=10, author_name="a",
            author_email="a@b", allow_local_remotes=False, base_env=base_env,
        )  # fmt: skip
    assert not marker.exists()
    assert not (tmp_path / "clones").exists()


@pytest.mark.parametrize("bad", ["-x", "a..b", "a b", "a:b", ""])
def test_check_revision(bad: str):
    with pytest.raises(InvalidInputError):
        check_revision(bad)
    assert check_revision("HEAD~2") == "HEAD~2"
