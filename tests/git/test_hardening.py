"""What a hostile repository or remote cannot make us do: run hooks, leak credentials, hang forever."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import GitError
from app.git import GitRepository, GitRunner, git_environment, mask_credentials
from app.git.remote_guard import RemoteGuard
from tests.git.gitutil import Origin, git

SECRET = "s3cr3t-token"
LOOPBACK_ALLOWED = RemoteGuard(allow_private=True)  # the fake servers here listen on 127.0.0.1


def install_hook(folder: Path, name: str, marker: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    hook = folder / name
    hook.write_text(f"#!/bin/sh\necho ran >> '{marker}'\n")
    hook.chmod(0o755)


HOOKS = ("pre-commit", "commit-msg", "post-commit", "post-checkout", "pre-push", "reference-transaction")


@pytest.mark.parametrize("where", ["dot-git-hooks", "core-hooksPath"])
async def test_repository_hooks_never_run(clone: GitRepository, tmp_path: Path, where: str):
    marker = tmp_path / f"hook-ran-{where}"
    if where == "dot-git-hooks":
        folder = clone.path / ".git" / "hooks"
    else:
        folder = tmp_path / "evil-hooks"
        git("config", "core.hooksPath", str(folder), cwd=clone.path)
    for name in HOOKS:
        install_hook(folder, name, marker)
    # The hooks are live for plain git: otherwise this test would prove nothing.
    git(
        "-c", "user.name=x", "-c", "user.email=x@y", "commit", "--allow-empty", "-qm", "probe", cwd=clone.path
    )
    assert marker.exists()
    marker.unlink()

    worktree = await clone.worktree_add(tmp_path / "wt", "0007-hooks", "main")
    (worktree.path / "f.txt").write_text("x\n")
    assert await worktree.commit_all("feat: f [protocol-0007/01]") is not None
    await worktree.push("0007-hooks")

    assert not marker.exists()


async def test_fsmonitor_of_the_repository_never_runs(clone: GitRepository, tmp_path: Path):
    marker = tmp_path / "fsmonitor-ran"
    script = tmp_path / "fsmonitor.sh"
    script.write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexit 1\n")
    script.chmod(0o755)
    git("config", "core.fsmonitor", str(script), cwd=clone.path)
    git("status", "--porcelain", cwd=clone.path)
    assert marker.exists()  # live for plain git
    marker.unlink()

    (clone.path / "new.txt").write_text("x\n")
    assert await clone.changed_files() == ["new.txt"]
    assert await clone.commit_all("chore: x") is not None

    assert not marker.exists()


@pytest.mark.parametrize(
    "url",
    [f"https://user:{SECRET}@127.0.0.1:1/x.git", f"https://{SECRET}@127.0.0.1:1/x.git"],
)
async def test_a_failing_clone_never_shows_the_credentials(
    url: str, tmp_path: Path, base_env, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="app.git")
    dest = tmp_path / "dest"
    with pytest.raises(GitError, match="git clone failed") as caught:
        await GitRepository.clone(
            url, dest, timeout=10, author_name="a", author_email="a@b", base_env=base_env,
            remote_guard=LOOPBACK_ALLOWED,
        )  # fmt: skip
    error = caught.value
    for shown in (str(error), error.message, repr(error.details), repr(error), caplog.text):
        assert SECRET not in shown
    assert not dest.exists()


async def test_git_error_messages_mask_credentials_git_itself_repeats(base_env):
    # check-ref-format echoes its argument verbatim in its error: our masking is what hides it.
    runner = GitRunner(timeout=10, base_env=base_env)
    with pytest.raises(GitError) as caught:
        await runner.run(["check-ref-format", "--branch", f"https://u:{SECRET}@h/x"], cwd=None)
    assert SECRET not in str(caught.value)
    assert "https://u:********@h/x" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://user:tok@host/x", "https://user:********@host/x"),
        ("https://tok@host/x", "https://********@host/x"),
        ("see 'HTTPS://u:p@ss@host:8443/x.git/'", "see 'HTTPS://u:********@host:8443/x.git/'"),
        ("ssh://git@host/x and ssh://git:pw@host/y", "ssh://git@host/x and ssh://git:********@host/y"),
        ("git@github.com:org/r.git", "git@github.com:org/r.git"),
        ("https://host/path@v1", "https://host/path@v1"),
        ("no url here", "no url here"),
    ],
)
def test_mask_credentials(text: str, masked: str):
    assert mask_credentials(text) == masked


async def test_transports_other_than_https_and_ssh_are_off_even_past_validation(
    tmp_path: Path, base_env, origin: Origin
):
    marker = tmp_path / "pwned"
    runner = GitRunner(timeout=10, base_env=base_env)  # local remotes not allowed
    for url, transport in [
        (f"ext::sh -c touch% {marker}", "ext"),
        ("git://127.0.0.1:1/x.git", "git"),
        ("http://127.0.0.1:1/x.git", "http"),
        (str(origin.path), "file"),
        (f"file://{origin.path}", "file"),
    ]:
        with pytest.raises(GitError, match=f"transport '{transport}' not allowed"):
            await runner.run(["clone", "--end-of-options", url, str(tmp_path / "d")], cwd=tmp_path)
    assert not marker.exists()
    # The same local clone works once local remotes are allowed: the refusal above was the policy.
    allowed = GitRunner(timeout=10, allow_local_remotes=True, base_env=base_env)
    await allowed.run(
        ["clone", "--quiet", "--end-of-options", str(origin.path), str(tmp_path / "d")], cwd=tmp_path
    )


async def test_the_environment_of_git_is_minimal_and_ours(tmp_path: Path):
    hostile = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_DIR": str(tmp_path / "elsewhere"),
        "GIT_CONFIG_PARAMETERS": "'leak.value'='yes'",
        "GIT_SSH_COMMAND": "touch /tmp/pwned",
        "TASKSGODZILLA_API_TOKEN": SECRET,
        "LC_ALL": "de_DE.UTF-8",
    }
    env = git_environment(hostile)
    assert env == {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ALLOW_PROTOCOL": "https:ssh",
    }
    runner = GitRunner(timeout=10, base_env=hostile)
    result = await runner.run(["config", "--get", "leak.value"], cwd=tmp_path, ok_codes=(0, 1))
    assert result.exit_code == 1


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel completes the handshake) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize("dest_exists", [False, True])
async def test_a_hanging_git_is_killed_at_the_deadline(
    silent_server: int, tmp_path: Path, base_env, dest_exists: bool
):
    url = f"https://127.0.0.1:{silent_server}/x.git"
    if dest_exists:
        (tmp_path / "d").mkdir()
    started = time.monotonic()
    with pytest.raises(GitError, match=r"git clone timed out after 1 s") as caught:
        await GitRepository.clone(
            url, tmp_path / "d", timeout=1, author_name="a", author_email="a@b", base_env=base_env,
            remote_guard=LOOPBACK_ALLOWED,
        )  # fmt: skip
    assert time.monotonic() - started < 5
    assert caught.value.details["timed_out"] is True
    assert processes_mentioning(f"127.0.0.1:{silent_server}") == []  # git and git-remote-https both gone
    if dest_exists:
        assert list((tmp_path / "d").iterdir()) == []
    else:
        assert not (tmp_path / "d").exists()


async def test_a_cancelled_git_is_killed(silent_server: int, tmp_path: Path, clone: GitRepository):
    git("remote", "add", "hang", f"https://127.0.0.1:{silent_server}/x.git", cwd=clone.path)
    task = asyncio.create_task(clone.fetch("hang"))
    for _ in range(100):  # git needs a moment to start and connect
        if processes_mentioning(f"127.0.0.1:{silent_server}"):
            break
        await asyncio.sleep(0.05)
    assert processes_mentioning(f"127.0.0.1:{silent_server}"), "git should be hanging by now"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert processes_mentioning(f"127.0.0.1:{silent_server}") == []
    # The repository is usable again: the lock was released.
    assert len(await asyncio.wait_for(clone.head_sha(), 5)) == 40
