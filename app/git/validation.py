"""Checks on everything that reaches a git command line from outside: branch names, remote URLs,
remote names, revisions. Each refuses with InvalidInputError naming the field, before git runs.

The checks are stricter than git: a name git would read as an option, a transport git would run a
program for (`ext::`), a host on a link-local, metadata or (unless allowed) private address, or a
character a log or terminal would mangle is refused outright. Branch names are checked by
`app.domain.refnames` (git's rules in Python: no git process per check).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.domain.addresses import Reach, host_reach, reach_of
from app.domain.refnames import BRANCH_MAX
from app.domain.visible import hidden_character
from app.errors import InvalidInputError

URL_MAX = 2048
DEFAULT_PORTS = {"https": 443, "ssh": 22}
PRIVATE_SETTING = "TASKSGODZILLA_GIT_ALLOW_PRIVATE_REMOTES"
LOCAL_SETTING = "TASKSGODZILLA_GIT_ALLOW_LOCAL_REMOTES"
# What a refused local remote is told: the two ways to use a repository on this machine.
LOCAL_FIX = (
    f"set {LOCAL_SETTING}=true to let git use a repository on this machine, or register a "
    "project's folder with `local_path` (CLI: --local-path) instead of `git_url`"
)

_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]")
_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@(?P<host>[^/:@]+):(?P<path>[^:].*)")
_TRANSPORT_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def _has_unsafe_chars(text: str) -> bool:
    return any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text) or (
        hidden_character(text) is not None
    )


@dataclass(frozen=True)
class RemoteEndpoint:
    """Where a remote URL makes git connect: `scheme` https or ssh, `host` as written, `port`."""

    scheme: str
    host: str
    port: int


def check_remote_url(url: str, *, allow_local: bool, allow_private: bool = False) -> str:
    """`url` if git may talk to it: https, ssh or `user@host:path` on a host whose address (as
    written: names are resolved by `app.git.remote_guard` before each call) is public, or private
    when `allow_private`; local paths only if `allow_local`.

    The message never repeats the URL, which may carry a token.
    """
    if not isinstance(url, str) or not url:
        raise InvalidInputError("a git URL is required", field="git_url")
    if len(url) > URL_MAX or url.startswith("-") or _has_unsafe_chars(url) or "\x00" in url:
        raise InvalidInputError(
            "git URL must not start with '-' or contain whitespace, control or invisible characters: "
            "copy the repository's clone URL as the forge shows it",
            field="git_url",
        )
    if _TRANSPORT_PREFIX.match(url):
        raise InvalidInputError(
            "git URL must not name a transport helper (`<transport>::`): "
            "use https://, ssh:// or user@host:path",
            field="git_url",
        )
    endpoint = remote_endpoint(url, allow_local=allow_local)
    if endpoint is not None:
        check_host_reach(endpoint.host, allow_private=allow_private)
    return url


def remote_endpoint(url: str, *, allow_local: bool = True) -> RemoteEndpoint | None:
    """The host and port git connects to for `url`; None for a local repository (a path, file://).
    A URL of no form git may use is an InvalidInputError."""
    scheme = _SCHEME.match(url)
    if scheme is not None:
        return _scheme_endpoint(url, scheme.group("scheme").lower(), allow_local)
    if (scp := _SCP_LIKE.fullmatch(url)) is not None:
        if not _HOST.fullmatch(scp.group("host")):
            raise InvalidInputError(
                "git URL has no valid host name: write it as git@host:owner/repo.git", field="git_url"
            )
        return RemoteEndpoint("ssh", scp.group("host"), DEFAULT_PORTS["ssh"])
    _check_local_path(url, allow_local)
    return None


def check_host_reach(host: str, *, allow_private: bool, address: str | None = None) -> None:
    """Refuse `host` (or the `address` it resolved to) when it is forbidden, or private and not allowed."""
    reach = host_reach(host) if address is None else reach_of(address)
    said = f"{host} resolves to {address}" if address is not None else f"{host} is"
    if reach is Reach.FORBIDDEN:
        raise InvalidInputError(
            f"git URL host {said} a link-local, cloud metadata or reserved address: never allowed; "
            "use the repository's public https or ssh address",
            field="git_url",
        )
    if reach is Reach.PRIVATE and not allow_private:
        raise InvalidInputError(
            f"git URL host {said} a loopback or private address: allowed only with {PRIVATE_SETTING}",
            field="git_url",
        )


def _scheme_endpoint(url: str, scheme: str, allow_local: bool) -> RemoteEndpoint | None:
    if scheme == "file":
        if not allow_local:
            raise InvalidInputError(
                f"local repositories (file://) are not allowed here: {LOCAL_FIX}", field="git_url"
            )
        return None
    if scheme not in DEFAULT_PORTS:
        raise InvalidInputError(
            f"git URL scheme {scheme!r} is not allowed: use https or ssh", field="git_url"
        )
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise InvalidInputError(
            "git URL is malformed: write it as https://host/owner/repo.git or ssh://git@host/owner/repo.git",
            field="git_url",
        ) from None
    host = parts.netloc.rpartition("@")[2]
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not _HOST.fullmatch(host):
        raise InvalidInputError(
            "git URL has no valid host name: write it as https://host/owner/repo.git", field="git_url"
        )
    if not parts.path.strip("/"):
        raise InvalidInputError(
            "git URL names no repository path: add it, as in https://host/owner/repo.git", field="git_url"
        )
    return RemoteEndpoint(scheme, host, port)


def _check_local_path(url: str, allow_local: bool) -> None:
    if not allow_local:
        raise InvalidInputError(
            "git URL must be https://, ssh:// or user@host:path; "
            f"local paths are not allowed here: {LOCAL_FIX}",
            field="git_url",
        )
    if not Path(url).is_absolute():
        raise InvalidInputError(
            "a local git remote must be an absolute path: give it from the root (/...)", field="git_url"
        )


def check_remote_name(name: str) -> str:
    """`name` if it is the name of a configured remote (`origin`), never a URL or an option."""
    if not isinstance(name, str) or not _REMOTE_NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError("remote must be a remote name such as 'origin'", field="remote")
    return name


def check_revision(rev: str, *, field: str = "ref") -> str:
    """`rev` if it can only be read as one revision (a sha, a branch, `HEAD~2`), never an option or range."""
    if (
        not isinstance(rev, str)
        or not rev
        or len(rev) > BRANCH_MAX
        or rev.startswith("-")
        or _has_unsafe_chars(rev)
        or ".." in rev
        or ":" in rev
    ):
        raise InvalidInputError(
            "a revision must be one commit name, without '..', ':', leading '-' or whitespace", field=field
        )
    return rev
