"""Masking credentials that ride inside URLs, so they never reach an exception, a log line or a screen."""

from __future__ import annotations

import re

MASK = "********"

# scheme://userinfo@ — the userinfo runs to the last `@` before the path, as URL parsers read it.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@]+(?:@[^\s/@]+)*)@")
# For ssh a bare user name (`ssh://git@host`) is who logs in, not a secret.
_USER_IS_NOT_SECRET = frozenset({"ssh://", "git+ssh://", "ssh+git://"})


def mask_credentials(text: str) -> str:
    """`https://user:token@host` -> `https://user:********@host`; `https://token@host` -> `https://********@host`."""
    return _URL_USERINFO.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    user, colon, _password = userinfo.partition(":")
    if colon:
        return f"{scheme}{user}:{MASK}@"
    if scheme.lower() in _USER_IS_NOT_SECRET:
        return match.group(0)
    return f"{scheme}{MASK}@"
