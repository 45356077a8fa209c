"""Names derived from user input: protocol slugs and `NNNN-slug` protocol names."""

from __future__ import annotations

import re
import unicodedata

SLUG_MAX = 48


def slugify(title: str, max_length: int = SLUG_MAX) -> str:
    """A lowercase ASCII slug of `title` (letters, digits, single dashes); `task` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or "task"


def protocol_name(number: int, slug: str) -> str:
    """`0007-add-login`: the protocol's folder under `.protocols/` and the default branch name."""
    if not 0 < number <= 9999:
        raise ValueError(f"protocol number {number} is outside 1..9999")
    return f"{number:04d}-{slug}"
