"""The in-process reading of a repository's config: as git reads it, refusing what it cannot read,
refusing every key of the deny list, cheap enough to run before every git command."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from app.errors import UnsafeRepositoryError
from app.git import GitRepository, config_guard
from app.git.config_file import ConfigSyntaxError, parse_config
from app.git.config_guard import check_repository
from tests.git.gitutil import git

# Tricky spellings: git's reading of each is the oracle.
CONFIG_TEXTS = [
    "[core]\n\tbare = false\n",
    '[Core]\n\tSSHCommand = "touch x" ; comment\n',
    '[remote "Origin"]\n\turl = https://h/x.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n',
    "[remote.Origin]\nurl=a\n",
    '[filter "e\\"v\\\\il"] clean = a\\\n b # c\n',
    '[a]\nb\nc = \n d = " x " y \\t z\n',
    '\ufeff[x]\ny=1\r\nz="a;b"#c\n',
    "[x]\n  y = 1\\\n2\n",
    '# top\n; top2\n[x] y=1\n[z "q"]w',
    '[x "a b"]\n\tk = v\n',
    '[x]\nk = "unterminated\n',
    "[x]\nk = a\\q\n",
    "k = v\n",
    '[x.y "z"]\nk=v\n',
    "[x]\n1k = v\n",
    "[x]\nk-1 = v\n",
    "[x]\nk\t=\tv\t\n",
    '[x "y"] k = 1 ;c\n[x "y"]k\n',
    "[x]\nk = a\n\x0b[y]\nj=2\n",
    "[ x]\nk=1\n",
    "[x ]\nk=1\n",
    '[x "y"z]\nk=1\n',
    "[]\nk=1\n",
    "[x.]\nk=1\n",
    "[x]\nk=v\\\n",
    "[x]\nk=\\",
    '[x]\n\tk = "a\\nb"\n',
    "[x]\n\u00a0k=1\n",
    "[x]\nk=1\r[y]\nz=2\n",
    '[filter "evil"]\n\tclean = "touch m" # ok\n[include]\n\tpath = other\n',
    '[url "ext::sh -c touch% m #"]\n\tinsteadOf = https://h/\n',
    "[x]\nk=1\x00\n",
]


def git_reads(text: str, tmp_path: Path) -> list[tuple[str, str | None]] | None:
    """What `git config --list` reads from `text`, or None when git refuses the file."""
    path = tmp_path / "oracle.cfg"
    path.write_bytes(text.encode())
    done = subprocess.run(
        ["git", "config", "--file", str(path), "--list", "--null"],
        capture_output=True,
        env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"},
        check=False,
    )
    if done.returncode != 0:
        return None
    read = []
    for item in done.stdout.split(b"\0")[:-1]:
        key, newline, value = item.decode().partition("\n")
        read.append((key, value if newline else None))
    return read


@pytest.mark.parametrize("text", CONFIG_TEXTS)
def test_we_read_a_config_as_git_does_or_refuse_it(text: str, tmp_path: Path):
    expected = git_reads(text, tmp_path)
    try:
        ours = [(entry.key, entry.value) for entry in parse_config(text)]
    except ConfigSyntaxError:
        return  # refusing is always safe: the repository is then not used at all
    assert expected is not None, "we read a file git refuses (harmless, but a sign we misread it)"
    assert ours == expected


DENIED = [
    ("core.sshCommand", "ssh -i key"),
    ("core.gitProxy", "proxy-cmd"),
    ("core.alternateRefsCommand", "cmd"),
    ("core.worktree", "/elsewhere"),
    ("remote.origin.uploadpack", "cmd"),
    ("remote.upstream.receivepack", "cmd"),
    ("remote.origin.vcs", "ext"),
    ("remote.origin.proxy", "http://proxy"),
    ("url.ext::x.insteadOf", "https://h/"),
    ("url.https://evil/.pushInsteadOf", "https://h/"),
    ("filter.lfs.clean", "git-lfs clean -- %f"),
    ("filter.x.smudge", "cmd"),
    ("filter.x.process", "cmd"),
    ("diff.external", "cmd"),
    ("diff.x.command", "cmd"),
    ("diff.x.textconv", "cmd"),
    ("merge.x.driver", "cmd"),
    ("include.path", "/tmp/other"),
    ("includeIf.gitdir:/.path", "/tmp/other"),
    ("http.proxy", "http://proxy"),
    ("http.sslVerify", "false"),
    ("http.sslCAInfo", "/tmp/ca.pem"),
    ("http.cookieFile", "/tmp/jar"),
    ("http.curloptResolve", "h:443:1.2.3.4"),
    ("http.https://h/.sslVerify", "false"),
    ("uploadpack.packObjectsHook", "cmd"),
    ("hook.pre-commit.command", "cmd"),
]

# Common in real repositories and made inert by the runner's `-c` overrides: not refused.
INERT = [
    ("core.hooksPath", ".husky"),
    ("core.fsmonitor", "true"),
    ("core.editor", "vim"),
    ("core.pager", "less"),
    ("core.askPass", "/usr/bin/ksshaskpass"),
    ("credential.helper", "store"),
    ("credential.https://h.helper", "cache"),
    ("commit.gpgSign", "true"),
    ("gpg.program", "gpg2"),
    ("log.showSignature", "true"),
    ("alias.st", "!git status"),
    ("protocol.file.allow", "always"),
    ("http.postBuffer", "524288000"),
    ("mergetool.x.cmd", "meld"),
    ("sendemail.smtpServer", "/usr/sbin/sendmail"),
]


@pytest.mark.parametrize(("key", "value"), DENIED)
def test_every_key_of_the_deny_list_refuses_the_repository(key: str, value: str, tmp_path: Path):
    repo = tmp_path / "repo"
    git("init", "-q", str(repo))
    check_repository(repo)  # a fresh repository passes
    git("config", key, value, cwd=repo)
    with pytest.raises(UnsafeRepositoryError) as refused:
        check_repository(repo)
    assert key.split(".")[0].lower() in str(refused.value).lower()
    assert refused.value.details["keys"]


@pytest.mark.parametrize(("key", "value"), INERT)
def test_keys_made_inert_by_the_overrides_are_not_refused(key: str, value: str, tmp_path: Path):
    repo = tmp_path / "repo"
    git("init", "-q", str(repo))
    git("config", key, value, cwd=repo)
    check_repository(repo)


def test_a_worktree_config_is_read_too(clone: GitRepository, tmp_path: Path):
    git("config", "extensions.worktreeConfig", "true", cwd=clone.path)
    git("config", "--worktree", "filter.x.clean", "cmd", cwd=clone.path)
    with pytest.raises(UnsafeRepositoryError, match=r"filter\.x\.clean"):
        check_repository(clone.path)


def test_an_unreadable_config_is_refused(clone: GitRepository):
    (clone.path / ".git" / "config").write_text('[core]\n\tbare = "false\n')
    with pytest.raises(UnsafeRepositoryError, match="cannot read the repository's git config"):
        check_repository(clone.path)


def test_an_unchanged_config_is_not_read_again(clone: GitRepository, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(config_guard, "RACY_SECONDS", 0.0)  # as if the clone were older than a tick
    config = clone.path / ".git" / "config"
    check_repository(clone.path)
    reads: list[Path] = []
    real = config_guard.read_config
    monkeypatch.setattr(config_guard, "read_config", lambda path: reads.append(path) or real(path))
    for _ in range(100):
        check_repository(clone.path)
    assert reads == []
    # An edit is seen at the next check, even one that keeps the size (within the same clock tick).
    config.write_text(config.read_text().replace("bare = false", "bare = fals0"))
    check_repository(clone.path)
    assert reads


def test_a_same_size_rewrite_just_after_a_check_is_still_seen(clone: GitRepository):
    """A file changed moments ago is read again every time: a second write within the same
    timestamp tick, with the same size, cannot hide behind the cache (the "racy git" problem)."""
    config = clone.path / ".git" / "config"
    text = config.read_text() + "[x]\n\tk = aaaaaaaa\n"
    config.write_text(text)
    check_repository(clone.path)
    config.write_text(text.replace("[x]\n\tk = aaaaaaaa", "[diff]\n\texternal=a"))
    with pytest.raises(UnsafeRepositoryError):
        check_repository(clone.path)


def per_call(work_tree: Path, rounds: int = 1000) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        check_repository(work_tree)
    return (time.perf_counter() - started) / rounds


def test_checking_before_every_call_costs_well_under_a_millisecond(
    clone: GitRepository, monkeypatch: pytest.MonkeyPatch
):
    fresh = per_call(clone.path)  # a config written in the last seconds is parsed every time
    monkeypatch.setattr(config_guard, "RACY_SECONDS", 0.0)
    check_repository(clone.path)
    cached = per_call(clone.path)
    print(f"check_repository per call: {fresh * 1e6:.0f} us parsing, {cached * 1e6:.0f} us cached")
    # Generous bounds for a loaded machine; the printed figures are what it costs.
    assert fresh < 0.005
    assert cached < 0.002
