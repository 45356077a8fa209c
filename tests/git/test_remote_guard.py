"""Remotes on forbidden addresses: refused when registered, and again before every git call that talks
to a remote, with the host resolved at that moment (a name cannot be rebound to a forbidden address)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.errors import GitError, InvalidInputError
from app.git import GitRepository, check_remote_url
from app.git.remote_guard import RemoteGuard
from tests.git.gitutil import AUTHOR, Origin, git

HOSTILE_URLS = [
    "https://169.254.169.254/latest/meta-data.git",
    "https://[fe80::1]/r.git",
    "https://[fd00:ec2::254]/r.git",
    "https://[::ffff:169.254.169.254]/r.git",
    "https://[::ffff:a9fe:a9fe]/r.git",
    "https://2852039166/r.git",
    "https://0xa9fea9fe/r.git",
    "https://0251.0376.0251.0376/r.git",
    "https://metadata.google.internal/computeMetadata.git",
    "ssh://git@169.254.169.254/r.git",
    "git@169.254.169.254:r.git",
    "https://0.0.0.0/r.git",
    "https://0/r.git",
    "https://224.0.0.1/r.git",
    "https://100.100.100.200/r.git",
]
PRIVATE_URLS = [
    "https://127.0.0.1/r.git",
    "https://0x7f.1/r.git",
    "https://2130706433/r.git",
    "https://[::1]:8443/r.git",
    "https://[::ffff:127.0.0.1]/r.git",
    "https://localhost/r.git",
    "https://10.0.0.8/r.git",
    "https://192.168.1.10:3000/r.git",
    "https://[fd12::1]/r.git",
    "ssh://git@172.16.0.3/r.git",
    "git@10.1.2.3:org/r.git",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_link_local_and_metadata_remotes_are_refused_even_when_private_ones_are_allowed(url: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(InvalidInputError) as refused:
            check_remote_url(url, allow_local=True, allow_private=allow_private)
        assert refused.value.details == {"field": "git_url"}


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_loopback_and_private_remotes_need_the_setting(url: str) -> None:
    with pytest.raises(InvalidInputError, match="TASKSGODZILLA_GIT_ALLOW_PRIVATE_REMOTES"):
        check_remote_url(url, allow_local=False)
    assert check_remote_url(url, allow_local=False, allow_private=True) == url


class Dns:
    """A resolver standing in for DNS (remote): fixed answers per name, every question recorded."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def _repo(path: Path, guard: RemoteGuard, base_env: dict[str, str]) -> GitRepository:
    return GitRepository(
        path, timeout=20, author_name=AUTHOR[0], author_email=AUTHOR[1], allow_local_remotes=True,
        base_env=base_env, remote_guard=guard,
    )  # fmt: skip


async def test_a_clone_from_a_name_that_resolves_to_metadata_is_refused(tmp_path: Path, base_env) -> None:
    dns = Dns({"git.example.test": ["140.82.112.3", "169.254.169.254"]})
    guard = RemoteGuard(allow_local=False, allow_private=True, resolver=dns)
    with pytest.raises(InvalidInputError, match=r"169\.254\.169\.254") as refused:
        await GitRepository.clone(
            "https://git.example.test/org/r.git", tmp_path / "dest", timeout=20, author_name="a",
            author_email="a@b", base_env=base_env, remote_guard=guard,
        )  # fmt: skip
    assert refused.value.details == {"field": "git_url"}
    assert dns.asked == [("git.example.test", 443)]
    assert not (tmp_path / "dest").exists()


async def test_fetch_and_push_check_the_remote_the_repository_names_now(
    clone: GitRepository, origin: Origin, base_env
) -> None:
    dns = Dns({"rebound.example.test": ["10.0.0.5"]})
    repo = _repo(clone.path, RemoteGuard(allow_local=True, allow_private=False, resolver=dns), base_env)
    await repo.fetch()  # the local origin of the tests: allowed by allow_local
    # An agent rewrites the origin during a step; the next remote call reads it again and refuses.
    git("remote", "set-url", "origin", "https://rebound.example.test/org/r.git", cwd=clone.path)
    for call in (
        repo.fetch(),
        repo.push("main"),
        repo.list_remote_branches(),
        repo.delete_remote_branch("x"),
    ):
        with pytest.raises(InvalidInputError, match=r"10\.0\.0\.5"):
            await call
    assert dns.asked == [("rebound.example.test", 443)] * 4

    git("remote", "set-url", "origin", str(origin.path), cwd=clone.path)
    git("remote", "set-url", "--push", "origin", "ssh://git@169.254.169.254/r.git", cwd=clone.path)
    for call in (repo.fetch(), repo.push("main")):  # one forbidden URL refuses the remote whole
        with pytest.raises(InvalidInputError, match="metadata"):
            await call
    git("config", "--unset", "remote.origin.pushurl", cwd=clone.path)
    git("config", "remote.origin.url", "ext::touch%/tmp/pwned", cwd=clone.path)
    with pytest.raises(InvalidInputError, match="transport"):
        await repo.fetch()


async def test_insteadof_rewrites_are_checked_as_git_applies_them(clone: GitRepository, base_env) -> None:
    repo = _repo(clone.path, RemoteGuard(allow_local=True, allow_private=False, resolver=Dns({})), base_env)
    git("config", "url.https://169.254.169.254/.insteadOf", str(clone.path.parent), cwd=clone.path)
    git("remote", "set-url", "origin", f"{clone.path.parent}/origin.git", cwd=clone.path)
    with pytest.raises(InvalidInputError, match="insteadof"):
        await repo.fetch()


async def test_names_that_do_not_resolve_fail_as_git_would(clone: GitRepository, base_env) -> None:
    repo = _repo(clone.path, RemoteGuard(allow_local=True, allow_private=False, resolver=Dns({})), base_env)
    git("remote", "set-url", "origin", "https://nowhere.example.test/r.git", cwd=clone.path)
    with pytest.raises(GitError, match=r"nowhere\.example\.test"):
        await repo.fetch()


async def test_https_is_pinned_to_the_address_that_was_checked(clone: GitRepository, base_env) -> None:
    # No real DNS knows this name: a connection reaching our socket can only come from the pin.
    arrived = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.set()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dns = Dns({"pinned.example.test": ["127.0.0.1"]})
    repo = _repo(clone.path, RemoteGuard(allow_local=True, allow_private=True, resolver=dns), base_env)
    git("remote", "set-url", "origin", f"https://pinned.example.test:{port}/r.git", cwd=clone.path)
    async with server:
        with pytest.raises(GitError):
            await repo.fetch()  # the TLS handshake fails: the connection is what counts
        await asyncio.wait_for(arrived.wait(), 20)
    assert dns.asked == [("pinned.example.test", port)]


async def test_localhost_really_resolves_to_loopback_and_is_refused(tmp_path: Path, base_env) -> None:
    guard = RemoteGuard(allow_local=False, allow_private=False)  # the system resolver
    with pytest.raises(InvalidInputError, match="TASKSGODZILLA_GIT_ALLOW_PRIVATE_REMOTES"):
        await guard.pins(["ssh://git@localhost/r.git"])
    allowed = RemoteGuard(allow_local=False, allow_private=True)
    assert await allowed.pins(["ssh://git@localhost/r.git"]) == []  # ssh is checked, not pinned
    pins = await allowed.pins(["https://localhost:8443/r.git"])
    assert ("http.followRedirects", "false") in pins
    assert any(key == "http.curloptResolve" and value.startswith("localhost:8443:") for key, value in pins)
