"""Credentials of an https remote reach git through our credential helper only: never a URL on disk,
never another host, never the repository's own helper or askpass. The remote is git's own
`git http-backend` behind TLS and HTTP Basic authentication (tests/support/git_https.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import GitError, InvalidInputError
from app.git import GitCredential, GitRepository, GitRunner, split_credentials
from app.git.remote_guard import RemoteGuard
from tests.git.gitutil import git
from tests.support.git_https import GitHttpsServer, serve_seeded_repository

PASSWORD = "s3cr3tpass"

LOOPBACK = RemoteGuard(allow_private=True)  # the test's https remote is on 127.0.0.1


@pytest.fixture
def https_remote(tmp_path: Path) -> Iterator[GitHttpsServer]:
    yield from serve_seeded_repository(tmp_path, username="bot", password=PASSWORD)


@pytest.fixture
def tls_env(https_remote: GitHttpsServer, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "SSL_CERT_FILE": str(https_remote.cert)}


def secret_in_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]


async def clone_from(server: GitHttpsServer, dest: Path, env: dict[str, str]) -> GitRepository:
    return await GitRepository.clone(
        server.url("x.git", with_credentials=True), dest, timeout=30,
        author_name="a", author_email="a@b", base_env=env, remote_guard=LOOPBACK,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "bare", "credential"),
    [
        ("https://bot:s3cr3t@h.ex/x.git", "https://h.ex/x.git", GitCredential("h.ex", "bot", "s3cr3t")),
        ("https://tok@h.ex:8443/x", "https://h.ex:8443/x", GitCredential("h.ex:8443", "tok", "")),
        ("https://u:p%40ss%3A@h/x", "https://h/x", GitCredential("h", "u", "p@ss:")),
        ("https://h/x.git", "https://h/x.git", None),
        ("ssh://git@h/x.git", "ssh://git@h/x.git", None),
        ("git@h:x.git", "git@h:x.git", None),
    ],
)
def test_split_credentials(url: str, bare: str, credential: GitCredential | None):
    assert split_credentials(url) == (bare, credential)


def test_credentials_that_would_forge_a_line_of_git_s_protocol_are_refused():
    with pytest.raises(InvalidInputError, match="control characters"):
        split_credentials("https://u:p%0Ahost=evil@h/x")
    with pytest.raises(InvalidInputError, match="ssh"):
        split_credentials("ssh://u:pw@h/x")


def test_the_password_never_shows_in_a_repr():
    assert PASSWORD not in repr(GitCredential("h", "u", PASSWORD))


async def test_clone_push_and_list_over_https_with_the_credential_kept_off_disk(
    https_remote: GitHttpsServer, tls_env: dict[str, str], tmp_path: Path
):
    clone = await clone_from(https_remote, tmp_path / "clone", tls_env)
    assert (clone.path / "README.md").read_text() == "hello\n"
    worktree = await clone.worktree_add(tmp_path / "wt", "0001-x", "main")
    (worktree.path / "f.txt").write_text("x\n")
    await worktree.commit_all("feat: f [protocol-0001/01]")
    await worktree.push("0001-x")
    assert "0001-x" in await clone.list_remote_branches()
    assert await clone.delete_remote_branch("0001-x")

    assert https_remote.authorized_requests() >= 4  # clone, push, two listings: all authenticated
    assert git("config", "--get", "remote.origin.url", cwd=clone.path) == https_remote.url("x.git")
    assert secret_in_files(tmp_path / "clone") == []
    assert secret_in_files(tmp_path / "wt") == []


async def test_without_the_credential_the_remote_refuses(
    https_remote: GitHttpsServer, tls_env: dict[str, str], tmp_path: Path
):
    with pytest.raises(GitError, match="could not read Username"):
        await GitRepository.clone(
            https_remote.url("x.git"), tmp_path / "c", timeout=30, author_name="a", author_email="a@b",
            base_env=tls_env, remote_guard=LOOPBACK,
        )  # fmt: skip


async def test_the_credential_goes_to_its_own_host_only(
    https_remote: GitHttpsServer, tls_env: dict[str, str], tmp_path: Path
):
    """A remote rewritten to another host (here: the same server under another name) gets nothing;
    the registered host gets the credential."""
    runner = GitRunner(timeout=30, base_env=tls_env)
    elsewhere = https_remote.url("x.git").replace("127.0.0.1", "localhost")
    other = GitCredential(f"127.0.0.1:{https_remote.port}", "bot", PASSWORD)  # registered for the IP
    with pytest.raises(GitError, match="could not read Username"):
        await runner.run(["ls-remote", "--end-of-options", elsewhere], cwd=tmp_path, credential=other)
    listed = await runner.run(
        ["ls-remote", "--end-of-options", https_remote.url("x.git")], cwd=tmp_path, credential=other
    )
    assert "refs/heads/main" in listed.text


async def test_the_repository_s_own_helper_and_askpass_never_answer(
    https_remote: GitHttpsServer, tls_env: dict[str, str], tmp_path: Path
):
    clone = await clone_from(https_remote, tmp_path / "clone", tls_env)
    marker = tmp_path / "marker"
    helper = tmp_path / "helper.sh"
    helper.write_text(f"#!/bin/sh\necho ran >> '{marker}'\necho username=bot\necho password={PASSWORD}\n")
    helper.chmod(0o755)
    git("config", "credential.helper", str(helper), cwd=clone.path)
    git("config", f"credential.{https_remote.url('')}.helper", str(helper), cwd=clone.path)
    git("config", "core.askPass", str(helper), cwd=clone.path)
    # Without a credential of ours, git has nobody to ask: it must fail, not run theirs.
    bare = GitRepository(
        clone.path, timeout=30, author_name="a", author_email="a@b", base_env=tls_env, remote_guard=LOOPBACK
    )

    with pytest.raises(GitError, match="could not read Username"):
        await bare.list_remote_branches()

    assert not marker.exists()


async def test_a_token_left_in_an_old_clone_s_config_is_taken_out(
    https_remote: GitHttpsServer, tls_env: dict[str, str], tmp_path: Path
):
    """Clones made before credentials left the URL kept the token in `.git/config`."""
    clone = await clone_from(https_remote, tmp_path / "clone", tls_env)
    git("remote", "set-url", "origin", https_remote.url("x.git", with_credentials=True), cwd=clone.path)
    assert secret_in_files(tmp_path / "clone")

    assert await clone.list_remote_branches() == ["main"]

    assert secret_in_files(tmp_path / "clone") == []
    assert git("config", "--get", "remote.origin.url", cwd=clone.path) == https_remote.url("x.git")
