"""Looking for a secret in text the way a reader would: as written, split by line breaks, base64, hex."""

from __future__ import annotations

import base64
import binascii
import re

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}")


def holds_secret(text: str, secret: str) -> bool:
    """Whether `text` gives `secret` away: verbatim, with whitespace or `\\n` escapes inside it, in hex,
    or base64-encoded (either alphabet, at any alignment, inside a longer encoded text)."""
    flat = "".join(re.sub(r"\\+[nrt]", "", text).split())
    raw = secret.encode()
    if secret in flat or raw.hex() in flat.lower():
        return True
    for run in _BASE64_RUN.findall(flat):
        run = run.replace("-", "+").replace("_", "/")
        for skip in range(4):
            part = run[skip:]
            part = part[: len(part) - len(part) % 4]
            try:
                if raw in base64.b64decode(part):
                    return True
            except (binascii.Error, ValueError):
                continue
    return False
