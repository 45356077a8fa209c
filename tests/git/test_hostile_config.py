"""A repository's own configuration never makes our git run a program, touch a folder outside the
repository, or talk to a remote it should not.

Each case is a real hostile repository: the setting is written to the clone's `.git/config` (where an
agent can write during a step) and shown live for plain git first, so the test proves something;
then every operation the services use runs on it, and the marker the program would leave must not
appear. Operations may refuse (that is one of the two fixes); what matters is that nothing ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from app.errors import TasksGodzillaError
from app.git import GitRepository
from app.git import plumbing as plumbing_module
from app.git import remotes as remotes_module
from app.git import repository as repository_module
from app.git import travel as travel_module
from app.git.config_file import GitDirs
from app.git.config_guard import RepositoryConfig
from tests.git.gitutil import git

Arm = Callable[[GitRepository, Path, Path], Awaitable[None]]  # (clone, marker, tmp_path)


def script(path: Path, marker: Path, then: str = "cat") -> str:
    """An executable that leaves `marker`, then does `then` (a filter's `cat` keeps git working)."""
    path.write_text(f"#!/bin/sh\necho ran >> '{marker}'\n{then}\n")
    path.chmod(0o755)
    return str(path)


async def every_operation(clone: GitRepository, tmp_path: Path) -> list[str]:
    """Run what the services run on a clone and a protocol worktree; the names of those that refused."""
    refused = []

    async def attempt(name: str, action: Callable[[], Awaitable[object]]) -> None:
        try:
            await action()
        except TasksGodzillaError:
            refused.append(name)

    await attempt("has_remote", lambda: clone.has_remote("origin"))
    await attempt("list_remote_branches", lambda: clone.list_remote_branches())
    await attempt("fetch", lambda: clone.fetch())
    wt_path = tmp_path / "projects" / "demo" / "worktrees" / "0009-evil"
    worktree = clone.sibling(wt_path)
    await attempt("worktree_add", lambda: clone.worktree_add(wt_path, "0009-evil", "main"))
    if (wt_path / ".git").exists():
        (wt_path / "app.py").write_text("print('changed')\n")
        (wt_path / "data.bin").write_text("payload\n")
        await attempt("changed_files", worktree.changed_files)
        await attempt("commit_all", lambda: worktree.commit_all("feat: x [protocol-0009/01]"))
        await attempt("find_step_commit", lambda: worktree.find_step_commit(9, 1))
        await attempt("diff_stats", lambda: worktree.diff_stats("main", "HEAD"))
        await attempt("push", lambda: worktree.push("0009-evil"))
        await attempt("delete_remote_branch", lambda: worktree.delete_remote_branch("0009-evil"))
        (wt_path / "junk.txt").write_text("junk\n")
        await attempt("discard_changes", worktree.discard_changes)
        await attempt("worktree_remove", lambda: clone.worktree_remove(wt_path, force=True))
    (clone.path / "top.txt").write_text("top\n")
    await attempt("commit_all(clone)", lambda: clone.commit_all("chore: top"))
    await attempt("head_sha", clone.head_sha)
    return refused


def live(clone: GitRepository, *args: str, marker: Path) -> None:
    """Show that plain git obeys the setting (the marker appears), then clear the marker."""
    with contextlib.suppress(AssertionError):
        git(*args, cwd=clone.path)
    assert marker.exists(), "the hostile setting should be live for plain git"
    marker.unlink()


async def ext_origin(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    # A per-protocol setting beats `-c protocol.allow=never`.
    git("config", "protocol.ext.allow", "always", cwd=clone.path)
    git("remote", "set-url", "origin", f"ext::sh -c touch% {marker}", cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


async def ext_push_url(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "protocol.ext.allow", "always", cwd=clone.path)
    git("remote", "set-url", "--push", "origin", f"ext::sh -c touch% {marker}", cwd=clone.path)
    live(clone, "push", "origin", "main:refs/heads/probe", marker=marker)


async def ext_vcs(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "protocol.ext.allow", "always", cwd=clone.path)
    git("config", "remote.origin.vcs", "ext", cwd=clone.path)
    git("remote", "set-url", "origin", f"sh -c touch% {marker}", cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


async def insteadof_to_ext(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "protocol.ext.allow", "always", cwd=clone.path)
    git("config", f"url.ext::sh -c touch% {marker} #.insteadOf", "https://forge.example/", cwd=clone.path)
    git("remote", "set-url", "origin", "https://forge.example/x.git", cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


async def upload_pack(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "remote.origin.uploadpack", f"touch {marker}; git-upload-pack", cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


async def receive_pack(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "remote.origin.receivepack", f"touch {marker}; git-receive-pack", cwd=clone.path)
    live(clone, "push", "origin", "main:refs/heads/probe", marker=marker)


async def ssh_command(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("remote", "set-url", "origin", "ssh://git@forge.invalid/x.git", cwd=clone.path)
    git("config", "core.sshCommand", script(tmp_path / "ssh.sh", marker, "exit 1"), cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


async def git_proxy(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "protocol.git.allow", "always", cwd=clone.path)
    git("remote", "set-url", "origin", "git://forge.invalid/x.git", cwd=clone.path)
    git("config", "core.gitProxy", script(tmp_path / "proxy.sh", marker, "exit 1"), cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


async def gpg_sign(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "commit.gpgSign", "true", cwd=clone.path)
    git("config", "gpg.program", script(tmp_path / "gpg.sh", marker, "exit 1"), cwd=clone.path)
    live(
        clone,
        "-c",
        "user.name=a",
        "-c",
        "user.email=a@b",
        "commit",
        "--allow-empty",
        "-qm",
        "p",
        marker=marker,
    )


async def show_signature(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    # A signed commit on main, and a log that verifies signatures through the repository's gpg.
    body = git("cat-file", "commit", "HEAD", cwd=clone.path)
    header = body.partition("\n\n")[0]
    # Tagged like a step commit, so that looking the step up shows (and verifies) this commit.
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n AAAA\n -----END PGP SIGNATURE-----"
    signed = f"{header}\n{signature}\n\nfeat: signed [protocol-0009/01]\n"
    (tmp_path / "signed.txt").write_text(signed)
    sha = git("hash-object", "-t", "commit", "-w", str(tmp_path / "signed.txt"), cwd=clone.path)
    git("update-ref", "refs/heads/main", sha, cwd=clone.path)
    git("config", "log.showSignature", "true", cwd=clone.path)
    git("config", "gpg.program", script(tmp_path / "gpg.sh", marker, "exit 1"), cwd=clone.path)
    live(clone, "log", "--format=%H", "HEAD", marker=marker)


def _filter_driver(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "filter.evil.clean", script(tmp_path / "clean.sh", marker), cwd=clone.path)
    git("config", "filter.evil.smudge", script(tmp_path / "smudge.sh", marker), cwd=clone.path)


async def filter_driver(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    # What the repository's content asks for (an agent can commit this) ...
    (clone.path / ".gitattributes").write_text("* filter=evil\n")
    git("add", ".gitattributes", cwd=clone.path)
    git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "attributes", cwd=clone.path)
    # ... and what the repository's config runs for it.
    _filter_driver(clone, marker, tmp_path)
    (clone.path / "probe.txt").write_text("x\n")
    live(clone, "add", "probe.txt", marker=marker)
    git("reset", "-q", "probe.txt", cwd=clone.path)
    (clone.path / "probe.txt").unlink()


async def filter_process(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    (clone.path / ".git" / "info").mkdir(exist_ok=True)
    (clone.path / ".git" / "info" / "attributes").write_text("* filter=evil\n")
    git("config", "filter.evil.process", script(tmp_path / "process.sh", marker, "exit 1"), cwd=clone.path)
    (clone.path / "probe.txt").write_text("x\n")
    live(clone, "add", "probe.txt", marker=marker)
    (clone.path / "probe.txt").unlink()


async def diff_driver(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    (clone.path / ".git" / "info").mkdir(exist_ok=True)
    (clone.path / ".git" / "info" / "attributes").write_text("* diff=evil\n")
    git("config", "diff.evil.textconv", script(tmp_path / "textconv.sh", marker), cwd=clone.path)
    git("config", "diff.evil.command", script(tmp_path / "diffcmd.sh", marker, "true"), cwd=clone.path)
    git("config", "diff.external", script(tmp_path / "external.sh", marker, "true"), cwd=clone.path)
    (clone.path / "README.md").write_text("changed\n")
    live(clone, "diff", marker=marker)
    git("checkout", "--", "README.md", cwd=clone.path)


async def include_path(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    # The dangerous keys live in another file, pulled in by `include.path`.
    included = tmp_path / "included.gitconfig"
    included.write_text(f'[filter "evil"]\n\tclean = {script(tmp_path / "clean.sh", marker)}\n')
    git("config", "include.path", str(included), cwd=clone.path)
    (clone.path / ".git" / "info").mkdir(exist_ok=True)
    (clone.path / ".git" / "info" / "attributes").write_text("* filter=evil\n")
    (clone.path / "probe.txt").write_text("x\n")
    live(clone, "add", "probe.txt", marker=marker)
    git("reset", "-q", "probe.txt", cwd=clone.path)
    (clone.path / "probe.txt").unlink()


async def fsmonitor(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    git("config", "core.fsmonitor", script(tmp_path / "fsmonitor.sh", marker, "exit 1"), cwd=clone.path)
    live(clone, "status", "--porcelain", marker=marker)


async def alternate_refs(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    # An alternate object store, and a command that lists its refs on every fetch.
    other = tmp_path / "alternate.git"
    git("init", "-q", "--bare", str(other))
    (clone.path / ".git" / "objects" / "info" / "alternates").write_text(f"{other}/objects\n")
    git("config", "core.alternateRefsCommand", script(tmp_path / "alt.sh", marker, "true"), cwd=clone.path)
    live(clone, "fetch", "origin", marker=marker)


async def credential_helper_and_askpass(clone: GitRepository, marker: Path, tmp_path: Path) -> None:
    # A remote that asks for a password: the repository's helper and askpass would answer it.
    import http.server
    import threading

    class Ask(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ask)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/x.git"
    git("config", "protocol.http.allow", "always", cwd=clone.path)
    git("remote", "set-url", "origin", url, cwd=clone.path)
    git("config", "credential.helper", script(tmp_path / "helper.sh", marker, "true"), cwd=clone.path)
    git("config", "core.askPass", script(tmp_path / "askpass.sh", marker, "echo x"), cwd=clone.path)
    live(clone, "ls-remote", "origin", marker=marker)


CASES: dict[str, Arm] = {
    "protocol.ext.allow + ext:: origin": ext_origin,
    "protocol.ext.allow + ext:: pushurl": ext_push_url,
    "remote.origin.vcs=ext": ext_vcs,
    "url.<ext::>.insteadOf": insteadof_to_ext,
    "remote.origin.uploadpack": upload_pack,
    "remote.origin.receivepack": receive_pack,
    "core.sshCommand": ssh_command,
    "core.gitProxy": git_proxy,
    "commit.gpgSign + gpg.program": gpg_sign,
    "log.showSignature + gpg.program": show_signature,
    "filter.<driver>.clean/smudge": filter_driver,
    "filter.<driver>.process": filter_process,
    "diff.<driver>.textconv/command + diff.external": diff_driver,
    "include.path": include_path,
    "core.fsmonitor": fsmonitor,
    "core.alternateRefsCommand": alternate_refs,
    "credential.helper + core.askPass": credential_helper_and_askpass,
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_repository_config_runs_nothing(case: str, clone: GitRepository, tmp_path: Path):
    marker = tmp_path / "marker"
    await CASES[case](clone, marker, tmp_path)
    marker.unlink(missing_ok=True)  # left by plain git tidying up after the proof, not by us

    await every_operation(clone, tmp_path)

    assert not marker.exists(), f"{case}: the repository's config ran a program"


async def test_core_worktree_cannot_point_git_at_another_folder(clone: GitRepository, tmp_path: Path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    git("config", "core.worktree", str(victim), cwd=clone.path)

    await every_operation(clone, tmp_path)

    assert (victim / "precious.txt").read_text() == "keep me\n", "git cleaned another folder"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"], "git wrote into another folder"
    tracked = git("ls-tree", "-r", "--name-only", "HEAD", cwd=clone.path).splitlines()
    assert "precious.txt" not in tracked, "git committed another folder's files"


async def test_a_nested_repository_in_a_worktree_runs_nothing(clone: GitRepository, tmp_path: Path):
    """An agent can leave a repository of its own inside the worktree, with its own config: staging
    the parent asks git about the nested one (`git status` inside it), which would run its filters."""
    marker = tmp_path / "marker"
    worktree = await clone.worktree_add(tmp_path / "wt", "0009-nested", "main")
    inner = worktree.path / "inner"
    git("init", "-q", str(inner))
    (inner / ".gitattributes").write_text("* filter=evil\n")
    (inner / "f.txt").write_text("one\n")
    git("add", ".", cwd=inner)
    git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "inner", cwd=inner)
    git("config", "filter.evil.clean", script(tmp_path / "clean.sh", marker), cwd=inner)
    git("add", "inner", cwd=worktree.path)  # the agent stages it: a gitlink
    (inner / "f.txt").write_text("two\n")  # and leaves it dirty
    live(worktree, "add", "--all", marker=marker)

    with contextlib.suppress(TasksGodzillaError):
        await worktree.changed_files()
    with contextlib.suppress(TasksGodzillaError):
        await worktree.commit_all("feat: nested [protocol-0009/01]")

    assert not marker.exists()


async def test_a_config_edited_between_two_calls_is_caught_at_the_next(clone: GitRepository, tmp_path: Path):
    """An agent rewrites `.git/config` during a step: the service's next call that talks to the
    remote must not obey it."""
    marker = tmp_path / "marker"
    worktree = await clone.worktree_add(tmp_path / "wt", "0009-edit", "main")
    (worktree.path / "f.txt").write_text("x\n")
    assert await worktree.commit_all("feat: f [protocol-0009/01]") is not None

    # The worktree shares the main clone's config: the agent edits it from inside the worktree.
    common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=worktree.path))
    git(
        "config",
        "--file",
        str(common / "config"),
        "remote.origin.receivepack",
        f"touch {marker}; git-receive-pack",
    )

    with contextlib.suppress(TasksGodzillaError):
        await worktree.push("0009-edit")
    with contextlib.suppress(TasksGodzillaError):
        await worktree.list_remote_branches()

    assert not marker.exists()


async def test_a_worktree_only_config_runs_nothing(clone: GitRepository, tmp_path: Path):
    """`extensions.worktreeConfig` gives each worktree a config file of its own (config.worktree in
    its git dir), which git reads after the shared one."""
    marker = tmp_path / "marker"
    worktree = await clone.worktree_add(tmp_path / "wt", "0009-wtconfig", "main")
    git("config", "extensions.worktreeConfig", "true", cwd=clone.path)
    git("config", "--worktree", "filter.evil.clean", script(tmp_path / "clean.sh", marker), cwd=worktree.path)
    (worktree.path / ".gitattributes").write_text("* filter=evil\n")
    (worktree.path / "probe.txt").write_text("x\n")
    live(worktree, "add", "probe.txt", marker=marker)
    git("reset", "-q", "probe.txt", cwd=worktree.path)
    marker.unlink(missing_ok=True)

    with contextlib.suppress(TasksGodzillaError):
        await worktree.commit_all("feat: x [protocol-0009/01]")

    assert not marker.exists()


# Every case a `-c` override or the transport allow-list neutralises on its own.
def _blind(monkeypatch: pytest.MonkeyPatch, blind: RepositoryConfig) -> None:
    """Every repository operation's config check sees `blind` (as if the config were read before
    a hostile write), wherever app/git imported the check."""
    for module in (repository_module, plumbing_module, remotes_module, travel_module):
        if hasattr(module, "check_repository"):
            monkeypatch.setattr(module, "check_repository", lambda work_tree: blind)


RACED = [case for case in CASES if not case.startswith(("filter.", "include."))]


@pytest.mark.parametrize("case", RACED)
async def test_keys_written_after_the_check_are_still_not_obeyed(
    case: str, clone: GitRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The config check runs just before git starts; a process the agent left behind could write
    the config in between. Whatever the overrides cover must hold without the check."""
    marker = tmp_path / "marker"
    await CASES[case](clone, marker, tmp_path)
    marker.unlink(missing_ok=True)
    blind = RepositoryConfig(GitDirs(clone.path / ".git", clone.path / ".git"), ())
    _blind(monkeypatch, blind)
    monkeypatch.setattr(repository_module, "check_nested_repositories", lambda *args: None)

    await every_operation(clone, tmp_path)

    assert not marker.exists(), f"{case}: obeyed once the check was passed"


async def test_core_worktree_written_after_the_check_still_moves_nothing(
    clone: GitRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    git("config", "core.worktree", str(victim), cwd=clone.path)
    blind = RepositoryConfig(GitDirs(clone.path / ".git", clone.path / ".git"), ())
    _blind(monkeypatch, blind)

    await every_operation(clone, tmp_path)

    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
