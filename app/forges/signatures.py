"""Is a webhook really from the forge? GitHub signs the raw body; GitLab sends a shared token.

Both checks run on the bytes as received, before any parsing, and compare in constant time. A missing
or malformed header is refused the same way as a wrong one, and says nothing about which it was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from app.errors import AuthenticationError

GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITLAB_TOKEN_HEADER = "X-Gitlab-Token"  # noqa: S105 (a header name)
_GITHUB_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
MAX_TOKEN_LENGTH = 1024


def github_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of body>`, as GitHub puts it in X-Hub-Signature-256."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_github_signature(secrets: Sequence[str], body: bytes, header: str | None) -> None:
    """Raise AuthenticationError unless `header` is the signature of `body` under one of `secrets`."""
    if header is None or not _GITHUB_SIGNATURE.fullmatch(header):
        raise AuthenticationError(f"a valid {GITHUB_SIGNATURE_HEADER} header is required")
    offered = header.encode("ascii")
    matched = False
    for secret in secrets:  # every secret is tried, so timing does not tell which one matched
        matched |= hmac.compare_digest(github_signature(secret, body).encode("ascii"), offered)
    if not matched:
        raise AuthenticationError(f"a valid {GITHUB_SIGNATURE_HEADER} header is required")


def verify_gitlab_token(secrets: Sequence[str], header: str | None) -> None:
    """Raise AuthenticationError unless `header` equals one of `secrets`."""
    if not header or len(header) > MAX_TOKEN_LENGTH:
        raise AuthenticationError(f"a valid {GITLAB_TOKEN_HEADER} header is required")
    offered = header.encode("utf-8", "surrogateescape")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(secret.encode("utf-8"), offered)
    if not matched:
        raise AuthenticationError(f"a valid {GITLAB_TOKEN_HEADER} header is required")
