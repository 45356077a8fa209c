"""Project and organisation tokens: 256 random bits each, shown once; only their SHA-256 is kept."""

from __future__ import annotations

import hashlib
import secrets

PROJECT_PREFIX = "tgp_"
ORGANISATION_PREFIX = "tgo_"


def new_project_token() -> tuple[str, str]:
    """A fresh project token and the hash to store: the token is shown once and never kept."""
    token = PROJECT_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def new_organisation_token() -> tuple[str, str]:
    """A fresh organisation token and the hash to store (shown once, never kept)."""
    token = ORGANISATION_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
