"""Recent GET answers kept in memory, dropped the moment a row behind them changes.

Reads of runs are the API's hottest path (consoles and CLIs poll them) and nearly all of them find
nothing changed. Each cached answer is tagged with what it was built from (`("protocol", id)`,
`("project_protocols", project_id)`); the change feed names the rows every commit touched, and their
tags' answers are dropped. Three rules keep it from ever serving what the database no longer says,
beyond the moment a notification takes to arrive:

- it is off while the change feed is disconnected (a notification could be lost), and emptied whenever
  the feed connects or drops;
- an answer read while any change arrived is not kept (it may predate that change): `put` takes the
  generation seen before the read and keeps the answer only if it has not moved since;
- a write through this process's API empties it when the write returns, so a client reads its own
  writes (the registry wraps every write endpoint; other writes are heard through the feed).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable

from aiohttp import web

from app.store.changes import Change

Key = Hashable
Tag = tuple[str, int]
MAX_ENTRIES = 20_000


class ResponseCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Key, tuple[bytes, dict[str, str], frozenset[Tag]]] = OrderedDict()
        self._keys_by_tag: dict[Tag, set[Key]] = {}
        self._max_entries = max_entries
        self.generation = 0
        self.enabled = False

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> web.Response | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        body, headers, _tags = entry
        return web.Response(body=body, headers=headers, content_type="application/json")

    def put(self, key: Key, tags: Iterable[Tag], response: web.Response, *, since: int) -> None:
        """Keep a 200 answer, unless the cache is off or something changed since `since`."""
        if not self.enabled or since != self.generation or response.status != 200 or not self._max_entries:
            return
        if not isinstance(response.body, bytes):
            return
        tag_set = frozenset(tags)
        headers = {name: response.headers[name] for name in ("ETag",) if name in response.headers}
        self._forget(key)
        self._entries[key] = (response.body, headers, tag_set)
        for tag in tag_set:
            self._keys_by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self._max_entries:
            self._forget(next(iter(self._entries)))

    def invalidate(self, tags: Iterable[Tag]) -> None:
        self.generation += 1
        for tag in tags:
            for key in self._keys_by_tag.pop(tag, set()):
                self._forget(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._keys_by_tag.clear()

    def on_change(self, change: Change | None, *, connected: bool) -> None:
        """The change feed's subscriber: drop what a change touched; everything when the feed flips."""
        if change is None:
            self.enabled = connected
            self.clear()
        elif tags := tags_of(change):
            self.invalidate(tags)
        # Rows no cached answer shows (events, steps) leave the generation alone: the busiest writes
        # would otherwise keep every read in flight from being kept.

    def _forget(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry[2]:
            keys = self._keys_by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_tag[tag]


def tags_of(change: Change) -> list[Tag]:
    """The cached answers a changed row can appear in."""
    if change.table == "protocol_runs":
        tags: list[Tag] = [("protocol", change.id)]
        if change.scope is not None:
            tags.append(("project_protocols", change.scope))
        return tags
    if change.table == "projects":
        return [("project", change.id), ("project_protocols", change.id)]
    return []
