"""Credentials for an https remote, kept out of every URL that is stored or written to disk.

`split_credentials` takes `https://user:token@host/x.git` apart: the URL without them (what is stored,
shown and written into `.git/config`) and a `GitCredential`. git gets the credential only on the
commands that talk to the remote, through a credential helper given on its command line
(`helper_config`): a shell function that answers git's `get` request with the username and
password found in its own environment (`helper_environment`), and only for https on the host of the
registered URL, so a rewritten remote cannot collect it. The secret never appears in an argument
list, a file, or git's config.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from app.errors import InvalidInputError

USERNAME_VAR = "TASKSGODZILLA_GIT_USERNAME"
PASSWORD_VAR = "TASKSGODZILLA_GIT_PASSWORD"  # noqa: S105 - the name of a variable, not a password
HOST_VAR = "TASKSGODZILLA_GIT_HOST"

# git runs `!`-helpers through the shell with the action appended (`get`, `store`, `erase`) and the
# request on stdin, one `key=value` per line. Only `get`, only https, only the registered host.
HELPER = (
    '!f() { test "$1" = get || return 0; p=; h=; '
    'while IFS= read -r line; do case "$line" in '
    f'protocol=https) p=1 ;; "host=${HOST_VAR}") h=1 ;; esac; done; '
    'test -n "$p" && test -n "$h" || return 0; '
    f'printf \'username=%s\\npassword=%s\\n\' "${USERNAME_VAR}" "${PASSWORD_VAR}"; }}; f'
)


@dataclass(frozen=True)
class GitCredential:
    """A username and password (or token) for one https host; the password never shows in a repr."""

    host: str
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for value in (self.host, self.username, self.password):
            # git's credential protocol is line-based: a newline would forge another field.
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
                raise InvalidInputError(
                    "git URL credentials must not contain control characters", field="git_url"
                )


def split_credentials(url: str) -> tuple[str, GitCredential | None]:
    """(`url` without credentials, the credentials it carried). Only https URLs carry any: an ssh
    user name is who logs in, not a secret, and an ssh password in a URL is refused (use a key)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc or parts.scheme.lower() not in ("https", "ssh"):
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if parts.scheme.lower() == "ssh":
        if colon:
            raise InvalidInputError("an ssh git URL cannot carry a password: use a key", field="git_url")
        return url, None
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    # A lone `https://token@host` is a token as the user name (GitHub, GitLab accept it so).
    return bare, GitCredential(hostport, unquote(user), unquote(password))


def helper_config() -> list[tuple[str, str]]:
    """`-c` pairs that drop every configured helper (an empty value resets git's list), then ours."""
    return [("credential.helper", ""), ("credential.helper", HELPER)]


def helper_environment(credential: GitCredential) -> dict[str, str]:
    """What the helper reads: set only in the environment of the one git command that needs it."""
    return {HOST_VAR: credential.host, USERNAME_VAR: credential.username, PASSWORD_VAR: credential.password}


# Where the credential of a project's remote comes from: asked only when a command needs it.
CredentialSource = Callable[[], Awaitable[GitCredential | None]]


def constant_source(credential: GitCredential) -> CredentialSource:
    """A source that always gives `credential` (one that came inside a URL)."""

    async def source() -> GitCredential | None:
        return credential

    return source
