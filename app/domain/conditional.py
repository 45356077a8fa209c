"""Conditional reads (RFC 9110 §13.1.2): does an `If-None-Match` header name the current ETag?"""

from __future__ import annotations

import re

# One entity tag: optionally weak (`W/`), then an opaque quoted string (no quote inside).
_ENTITY_TAG = re.compile(r'[\s,]*(?:W/)?("[^"]*")\s*(?:,|$)')


def none_match(header: str, etag: str) -> bool:
    """True when `header` (an If-None-Match value) names `etag` or is `*`: the client's copy is
    current, so a GET answers 304. The weak comparison: `W/"3"` and `"3"` name the same version.
    A header that is not a list of entity tags names nothing."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    position, end = 0, len(header)
    while position < end:
        found = _ENTITY_TAG.match(header, position)
        if found is None:
            return False
        if found.group(1) == wanted:
            return True
        position = found.end()
    return False
