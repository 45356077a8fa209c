"""What a repository's own configuration may not say: keys that make git run a program, work on
another folder, or send our traffic (and credentials) somewhere else.

Two defences work together (README, "Git hardening"):
- every git command carries `-c` overrides (app.git.runner.HARDENING) for the single-valued keys,
  so `core.sshCommand`, `core.askPass`, `credential.helper`, `commit.gpgSign`, `log.showSignature`,
  `core.fsmonitor`, `core.hooksPath`... from the repository are never obeyed, even if written a
  millisecond before git starts;
- before every command, `check_repository` reads the repository's config files in-process (they are
  parsed again only when one changed on disk) and refuses, with UnsafeRepositoryError, any key that
  `-c` cannot neutralise: keys with a free name in them (`filter.<driver>.clean`,
  `url.<base>.insteadOf`, `http.<url>.proxy`), multi-valued ones (`core.gitProxy`), includes (the
  included file is not read: it is refused), and the rest of the deny list below.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from app.errors import GitError, InvalidInputError, UnsafeRepositoryError
from app.git.config_file import ConfigSyntaxError, Entry, GitDirs, git_dirs, read_config
from app.git.credentials import split_credentials
from app.git.redact import mask_credentials
from app.git.validation import check_remote_url

# (pattern over `section.subsection.name` lower-cased, why git must not obey it). Keys the runner
# overrides on every call are not here: a repository may set them, they are simply not obeyed.
DENIED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), why)
    for pattern, why in (
        (r"core\.sshcommand", "names the program git runs to reach an ssh remote"),
        (r"core\.gitproxy", "names a program git runs to reach a remote"),
        (r"core\.alternaterefscommand", "names a program git runs on fetch"),
        (r"core\.worktree", "points git's working tree at another folder"),
        (r"remote\..*\.(uploadpack|receivepack)", "names the program git runs for a remote"),
        (r"remote\..*\.vcs", "names a remote helper program"),
        (r"remote\..*\.proxy(authmethod)?", "sends the remote's traffic through another host"),
        (r"url\..*\.(insteadof|pushinsteadof)", "rewrites remote URLs"),
        (r"filter\..*\.(clean|smudge|process)", "names a program git runs on checkout and add"),
        (r"diff\.external", "names a program git runs for diffs"),
        (r"diff\..*\.(command|textconv)", "names a program git runs for diffs"),
        (r"merge\..*\.driver", "names a program git runs for merges"),
        (r"include\.path|includeif\..*\.path", "includes another config file"),
        (r"http\..*\..*", "sets an http option for some URLs only"),
        (
            r"http\.(proxy\w*|ssl\w*|cookiefile|savecookies|curloptresolve|extraheader|pinnedpubkey)",
            "changes where git's https traffic goes or how it is trusted",
        ),
        (r"uploadpack\.packobjectshook", "names a program git runs on fetch"),
        (r"hook\..*\.command", "names a hook program"),
    )
)


@dataclass(frozen=True)
class RepositoryConfig:
    """The repository-level entries git reads for one working tree, checked against DENIED."""

    dirs: GitDirs
    entries: tuple[Entry, ...]

    def values(self, key: str) -> list[str]:
        """Every value of `key` (`section.subsection.name`, subsection case kept), in reading order."""
        return [e.value or "" for e in self.entries if e.key == _canonical(key)]


def _canonical(key: str) -> str:
    section, _, rest = key.partition(".")
    middle, _, name = rest.rpartition(".")
    return f"{section.lower()}.{middle}.{name.lower()}" if middle else f"{section.lower()}.{name.lower()}"


def denied_keys(entries: tuple[Entry, ...] | list[Entry]) -> list[tuple[str, str]]:
    """(key, why) of every entry the deny list refuses, in file order."""
    found = []
    for entry in entries:
        lowered = entry.key.lower()
        for pattern, why in DENIED:
            if pattern.fullmatch(lowered):
                found.append((entry.key, why))
                break
    return found


# Working tree -> (fingerprint of its config files, what they said): reread only on a change.
_CACHE: dict[Path, tuple[tuple[object, ...], RepositoryConfig]] = {}
_CACHE_MAX = 4096
# A file changed this recently may change again within the same timestamp tick without its
# fingerprint moving (the "racy git" problem): it is read again rather than trusted from the cache.
RACY_SECONDS = 2.0


def _fingerprint(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _settled(stamps: list[tuple[int, int, int, int] | None]) -> bool:
    # The change time: unlike the modification time, no one can set it back.
    newest = max((stamp[3] for stamp in stamps if stamp is not None), default=0)
    return time.time_ns() - newest > RACY_SECONDS * 1e9


def check_repository(work_tree: Path) -> RepositoryConfig:
    """The configuration of the repository at `work_tree`, or UnsafeRepositoryError naming what it
    sets that git must not obey (or why it cannot be read). Cheap: a few stat calls when unchanged."""
    dirs = git_dirs(work_tree)
    if dirs is None:
        # Not (yet) there: a GitError like git's own, which a later try may not meet.
        missing = "no such directory" if not work_tree.is_dir() else "not a git working tree (no .git):"
        raise GitError(f"git: {missing} {work_tree}")
    files = dirs.config_files()
    stamps = [_fingerprint(path) for path in files]
    fingerprint = (dirs, *stamps)
    cached = _CACHE.get(work_tree)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    entries: list[Entry] = []
    for path in files:
        try:
            entries += read_config(path)
        except (ConfigSyntaxError, OSError) as exc:
            raise UnsafeRepositoryError(
                f"cannot read the repository's git config {path}: {exc}", field="repository"
            ) from None
    refused = denied_keys(entries)
    if refused:
        listed = "; ".join(f"{key} ({why})" for key, why in refused[:5])
        raise UnsafeRepositoryError(
            f"the repository's git config sets what TasksGodzilla never lets git obey: {listed}. "
            "Remove these settings from the repository's config to use it",
            field="repository",
            keys=[key for key, _ in refused],
        )
    config = RepositoryConfig(dirs, tuple(entries))
    if _settled(stamps):
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[work_tree] = (fingerprint, config)
    return config


def check_remote(
    config: RepositoryConfig,
    remote: str,
    *,
    allow_local: bool,
    allow_private: bool = False,
    expected_url: str | None,
) -> list[str]:
    """Before git talks to `remote`: each of its URLs (fetch and push) must pass the checks a new
    project's URL passes and, when the service knows the project's URL, be that URL (credentials
    aside). An agent that rewrote the remote gets an UnsafeRepositoryError, not a push elsewhere.
    Returns the URLs (no `insteadOf` can rewrite them: the deny list refuses it), for the remote guard."""
    urls = config.values(f"remote.{remote}.url") + config.values(f"remote.{remote}.pushurl")
    if remote != "origin":
        expected_url = None  # the project's URL is origin's; other remotes are only checked
    if not urls:
        return []  # git itself will say the remote does not exist
    for url in urls:
        try:
            check_remote_url(url, allow_local=allow_local, allow_private=allow_private)
        except InvalidInputError as refused:
            raise UnsafeRepositoryError(
                f"the repository's remote {remote!r} has a URL git may not use: {refused.message}",
                field="repository",
            ) from None
        if expected_url is not None and split_credentials(url)[0] != expected_url:
            raise UnsafeRepositoryError(
                f"the repository's remote {remote!r} no longer points at the project's git URL "
                f"(it says {mask_credentials(url)}): restore it with `git remote set-url`",
                field="repository",
            )
    return urls


# git's own programs on the far side: for these two keys git keeps the first value it reads (the
# repository's, before any `-c`), so only these command-line options override them.
UPLOAD_PACK = "--upload-pack=git-upload-pack"
RECEIVE_PACK = "--receive-pack=git-receive-pack"


def remote_overrides(remote: str) -> list[tuple[str, str]]:
    """`-c` pairs for a command that talks to `remote`, whatever the repository says (the refusal
    above may be a moment old). Its upload-pack and receive-pack are set by command-line options:
    for those, git keeps the first value it reads, and `-c` comes last."""
    return [(f"remote.{remote}.mirror", "false")]


def check_local_repository(work_tree: Path, *, allow_local: bool, allow_private: bool = False) -> None:
    """A repository registered by its path must pass, at registration, the checks every git call
    makes: its config, and its `origin` as a git URL of a new project (UnsafeRepositoryError on
    the `local_path` field). A folder that is not a repository (yet) is left to setup to report."""
    if git_dirs(work_tree) is None:
        return
    try:
        config = check_repository(work_tree)
        check_remote(
            config, "origin", allow_local=allow_local, allow_private=allow_private, expected_url=None
        )
    except UnsafeRepositoryError as refused:
        raise UnsafeRepositoryError(refused.message, **{**refused.details, "field": "local_path"}) from None


GITLINK_MODE = b"160000"


def check_nested_repositories(work_tree: Path, staged: bytes) -> None:
    """Check the config of every checked-out submodule in `staged` (`git ls-files --stage -z`), as
    `check_repository` does ours: `git add` runs `git status` inside each, with its own config."""
    for record in staged.split(b"\0"):
        mode, _, rest = record.partition(b" ")
        if mode == GITLINK_MODE:
            nested = work_tree / os.fsdecode(rest.partition(b"\t")[2])
            if (nested / ".git").exists():
                check_repository(nested)
