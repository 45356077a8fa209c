"""Names derived from user input: protocol slugs and `NNNN-slug` protocol names."""

from __future__ import annotations

import re
import unicodedata

from app.domain.commits import MAX_PROTOCOL_NUMBER
from app.domain.visible import check_visible_text
from app.errors import InvalidInputError

SLUG_MAX = 48


def slugify(title: str, max_length: int = SLUG_MAX) -> str:
    """A lowercase ASCII slug of `title` (letters, digits, single dashes); `task` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or "task"


def protocol_name(number: int, slug: str) -> str:
    """`0007-add-login`: the protocol's folder under `.protocols/` and the default branch name."""
    if not 0 < number <= MAX_PROTOCOL_NUMBER:
        raise ValueError(f"protocol number {number} is outside 1..{MAX_PROTOCOL_NUMBER}")
    return f"{number:04d}-{slug}"


TITLE_MAX = 200
_PATHLIKE = re.compile(r"(^|[\s/\\])\.\.([/\\]|$)|^[/\\~]|^[A-Za-z]:[/\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def check_task_title(title: str) -> str:
    """The title, trimmed; refused when empty, over 200 characters, multi-line, hiding characters
    (`app.domain.visible`), or shaped like a path."""
    if not isinstance(title, str) or not title.strip():
        raise InvalidInputError("a task title is required", field="title")
    cleaned = title.strip()
    if len(cleaned) > TITLE_MAX:
        raise InvalidInputError(f"the task title is longer than {TITLE_MAX} characters", field="title")
    if _CONTROL.search(cleaned):
        raise InvalidInputError("the task title must be one line of text", field="title")
    check_visible_text(cleaned, field="title")
    if _PATHLIKE.search(cleaned):
        raise InvalidInputError("the task title must not be a file path", field="title")
    return cleaned
