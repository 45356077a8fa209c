"""Checks on everything that reaches a git command line from outside: branch names, remote URLs,
remote names, revisions. Each refuses with InvalidInputError naming the field, before git runs.

The checks are stricter than git: a name git would read as an option, a transport git would run a
program for (`ext::`), or a character a log or terminal would mangle is refused outright.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from app.errors import InvalidInputError
from app.git.runner import GitRunner

BRANCH_MAX = 200
URL_MAX = 2048
DEFAULT_CHECK_TIMEOUT = 30.0

_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]")
_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@(?P<host>[^/:@]+):(?P<path>[^:].*)")
_TRANSPORT_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def _has_unsafe_chars(text: str) -> bool:
    return any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def branch_name_problem(name: str) -> str | None:
    """Why `name` cannot be a branch of ours (the checks git's own rules do not make), or None."""
    if not isinstance(name, str) or not name:
        return "a branch name is required"
    if len(name) > BRANCH_MAX:
        return f"branch name is longer than {BRANCH_MAX} characters"
    if name.startswith("-"):
        return "branch name must not start with '-'"
    if _has_unsafe_chars(name):
        return "branch name must not contain whitespace or control characters"
    if ".." in name or "@{" in name:
        return "branch name must not contain '..' or '@{'"
    if name == "HEAD":
        return "'HEAD' is not a branch name"
    return None


async def check_branch_name(name: str, *, runner: GitRunner | None = None) -> str:
    """`name` if it is safe and `git check-ref-format --branch` agrees, else InvalidInputError."""
    problem = branch_name_problem(name)
    if problem is not None:
        raise InvalidInputError(problem, field="branch")
    runner = runner or GitRunner(timeout=DEFAULT_CHECK_TIMEOUT)
    # check-ref-format knows no --end-of-options; the leading '-' was refused above.
    result = await runner.run(["check-ref-format", "--branch", name], cwd=None, ok_codes=range(256))
    if result.exit_code != 0 or result.text.strip() != name:
        raise InvalidInputError(f"{name!r} is not a valid git branch name", field="branch")
    return name


def check_remote_url(url: str, *, allow_local: bool) -> str:
    """`url` if git may clone from it: https, ssh or `user@host:path`; local paths only if `allow_local`.

    The message never repeats the URL, which may carry a token.
    """
    if not isinstance(url, str) or not url:
        raise InvalidInputError("a git URL is required", field="git_url")
    if len(url) > URL_MAX or url.startswith("-") or _has_unsafe_chars(url) or "\x00" in url:
        raise InvalidInputError(
            "git URL must not start with '-' or contain whitespace or control characters", field="git_url"
        )
    if _TRANSPORT_PREFIX.match(url):
        raise InvalidInputError("git URL must not name a transport helper (`<transport>::`)", field="git_url")
    scheme = _SCHEME.match(url)
    if scheme is not None:
        _check_scheme_url(url, scheme.group("scheme").lower(), allow_local)
    elif _SCP_LIKE.fullmatch(url):
        _check_scp_like(url)
    else:
        _check_local_path(url, allow_local)
    return url


def _check_scheme_url(url: str, scheme: str, allow_local: bool) -> None:
    if scheme == "file":
        if not allow_local:
            raise InvalidInputError("local repositories (file://) are not allowed here", field="git_url")
        return
    if scheme not in ("https", "ssh"):
        raise InvalidInputError(
            f"git URL scheme {scheme!r} is not allowed: use https or ssh", field="git_url"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError:
        raise InvalidInputError("git URL is malformed", field="git_url") from None
    host = parts.netloc.rpartition("@")[2]
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not _HOST.fullmatch(host):
        raise InvalidInputError("git URL has no valid host name", field="git_url")
    if not parts.path.strip("/"):
        raise InvalidInputError("git URL names no repository path", field="git_url")


def _check_scp_like(url: str) -> None:
    match = _SCP_LIKE.fullmatch(url)
    assert match is not None
    if not _HOST.fullmatch(match.group("host")):
        raise InvalidInputError("git URL has no valid host name", field="git_url")


def _check_local_path(url: str, allow_local: bool) -> None:
    if not allow_local:
        raise InvalidInputError(
            "git URL must be https://, ssh:// or user@host:path; local paths are not allowed here",
            field="git_url",
        )
    if not Path(url).is_absolute():
        raise InvalidInputError("a local git remote must be an absolute path", field="git_url")


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
