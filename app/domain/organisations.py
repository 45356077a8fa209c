"""An organisation's name (shown) and slug (how the command line and people name it)."""

from __future__ import annotations

import re
import unicodedata

from app.domain.visible import check_visible_text
from app.errors import InvalidInputError

NAME_MAX = 100
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?")


def check_organisation_name(name: str) -> str:
    """`name`, stripped, unless it is empty, too long, or holds control or invisible format characters
    (a right-to-left override would make one name look like another)."""
    name = name.strip()
    if not 0 < len(name) <= NAME_MAX:
        raise InvalidInputError(f"name must be 1-{NAME_MAX} characters", field="name")
    return check_visible_text(name, field="name")


def organisation_slug(name: str, slug: str | None) -> str:
    """`slug` if given and well formed, else one made from `name` (a-z, 0-9, single dashes)."""
    if slug is None:
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].rstrip("-")
        if not slug:
            raise InvalidInputError("no slug can be made from this name: give one", field="slug")
    if not _SLUG.fullmatch(slug):
        raise InvalidInputError(
            "slug must be 1-48 of a-z, 0-9 and '-', starting and ending with a letter or digit", field="slug"
        )
    return slug
