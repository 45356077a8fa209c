"""Known secrets found and replaced in text that is about to be stored, written, committed or shown.

Every form of every secret (`app.domain.secret_forms`) is one branch of a single compiled pattern,
shaped as a trie so that a position in the text is tried against each distinct first character once,
not against each form. Between any two characters of a form, up to MAX_GAP whitespace characters or
escaped line breaks (`\\n` as it appears in JSON) may stand: a secret split across two lines is
still found. Long texts are scanned in windows, so that no single call holds the interpreter for
long (transcripts are redacted in a worker thread while the event loop serves requests).

A redactor knows each secret by the name of its setting, so that a caller can say which setting's
value it found without ever showing the value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel

from app.domain.secret_forms import Tokens, canonical, canonical_keys, forms_of

REDACTED = "********"
MIN_SECRET_CHARS = 6  # shorter values would redact ordinary words; real secrets are longer
UNNAMED = "a configured secret"
MAX_GAP = 16
_GAP = r"(?:\s|\\{1,4}[nrt]){0," + str(MAX_GAP) + "}"
_GAP_CHARS = 5  # the longest gap unit: four backslashes and a letter
WINDOW_CHARS = 64 * 1024


class Redactor:
    """Replaces known secrets, in all their forms, with REDACTED; reports which it found, by name."""

    def __init__(self, secrets: Mapping[str, str] | Iterable[str] = ()) -> None:
        """`secrets`: setting name → value, or bare values (then reported as UNNAMED)."""
        pairs = secrets.items() if isinstance(secrets, Mapping) else ((UNNAMED, s) for s in secrets)
        self._values: dict[str, frozenset[str]] = {}
        self._add(pairs)

    def _add(self, pairs: Iterable[tuple[str, str]]) -> None:
        for name, value in pairs:
            if isinstance(value, str) and len(value) >= MIN_SECRET_CHARS:
                self._values[value] = self._values.get(value, frozenset()) | {name}
        self._matcher = _matcher(frozenset(self._values.items()))

    def extended(self, more: Mapping[str, str]) -> Redactor:
        """This redactor plus `more` (name → value): for secrets known only per project or per call."""
        redactor = Redactor()
        redactor._values = dict(self._values)
        redactor._add(more.items())
        return redactor

    @property
    def names(self) -> set[str]:
        """The names of the secrets this redactor knows."""
        return {name for names in self._values.values() for name in names}

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        return self.scan(text)[0]

    def scan(self, text: str) -> tuple[str, set[str]]:
        """`text` with every known secret replaced, and the names of the secrets found."""
        if self._matcher is None or not text:
            return text, set()
        return self._matcher.scan(text)

    def redact_value(self, value: Any) -> tuple[Any, set[str]]:
        """`value` with every string in it redacted, recursively (JSON-like data, models, keys too)."""
        found: set[str] = set()

        def walk(item: Any) -> Any:
            if isinstance(item, Enum) or self._matcher is None:
                return item  # a status is a str, but never one an agent wrote
            if isinstance(item, str):
                clean, names = self.scan(item)
                found.update(names)
                return clean
            if isinstance(item, dict):
                return {walk(key): walk(inner) for key, inner in item.items()}
            if isinstance(item, list | tuple):
                return type(item)(walk(inner) for inner in item)
            if isinstance(item, BaseModel):
                dumped = item.model_dump()
                cleaned = walk(dumped)
                return item if cleaned == dumped else type(item).model_validate(cleaned)
            return item

        return walk(value), found

    def scan_file(self, data: bytes) -> tuple[bytes | None, set[str]]:
        """A file's content with every known secret replaced (UTF-8 text), or None when a binary file
        holds one (it cannot be edited safely: leave it out); and the names of the secrets found."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            found = self.scan(data.decode("latin-1"))[1]  # byte for byte: a secret's ASCII shows as is
            return (None if found else data), found
        clean, found = self.scan(text)
        return (clean.encode("utf-8") if found else data), found


class _Matcher:
    """One compiled pattern over all forms, and the way back from a match to the secrets' names."""

    def __init__(self, secrets: frozenset[tuple[str, frozenset[str]]]) -> None:
        forms: list[Tokens] = []
        self._names: dict[str, set[str]] = {}
        for value, names in secrets:
            forms += forms_of(value)
            for key in canonical_keys(value):
                self._names.setdefault(key, set()).update(names)
        self.pattern = re.compile(_trie_pattern(forms))
        longest = max(len(tokens) for tokens in forms)
        # No match is longer than this: a window reaching this far past its end sees every match
        # that starts inside it whole.
        self.overlap = longest + (longest - 1) * MAX_GAP * _GAP_CHARS
        self.window = max(WINDOW_CHARS, 2 * self.overlap)

    def scan(self, text: str) -> tuple[str, set[str]]:
        found: set[str] = set()
        parts: list[str] = []
        kept = 0  # text[:kept] is already in parts
        start, length = 0, len(text)
        while start < length:
            end = min(length, start + self.window)
            for match in self.pattern.finditer(text, start, min(length, end + self.overlap)):
                if match.start() >= end:
                    break
                parts += (text[kept : match.start()], REDACTED)
                kept = match.end()
                found |= self._names_of(match.group())
            start = max(end, kept)
        if not parts:
            return text, found
        parts.append(text[kept:])
        return "".join(parts), found

    def _names_of(self, matched: str) -> set[str]:
        key = canonical(matched)
        return self._names.get(key) or self._names.get(key.lower()) or {UNNAMED}


@functools.lru_cache(maxsize=32)
def _matcher(secrets: frozenset[tuple[str, frozenset[str]]]) -> _Matcher | None:
    """Compiled once per set of secrets (a redactor extended per project recompiles only when its
    secrets change)."""
    return _Matcher(secrets) if secrets else None


def _trie_pattern(forms: list[Tokens]) -> str:
    """One alternation of all `forms`, common prefixes merged, a gap allowed between two tokens."""
    root: dict[str, Any] = {}
    for tokens in forms:
        node = root
        for token in tokens:
            node = node.setdefault(token, {})
        node[""] = {}  # a form ends here
    return _emit(root, first=True)


def _emit(node: dict[str, Any], *, first: bool) -> str:
    """The pattern for the forms below `node`: straight runs iteratively, branches recursively (the
    depth is the number of branch points on a path, not its length)."""
    chain: list[str] = []
    while True:
        ends = "" in node
        branches = [token for token in node if token != ""]
        if len(branches) == 1 and not ends:
            token = branches[0]
            chain.append(token if first and not chain else _GAP + token)
            node = node[token]
            continue
        break
    if not branches:
        return "".join(chain)
    leading = first and not chain
    alternatives = [
        (token if leading else _GAP + token) + _emit(node[token], first=False) for token in branches
    ]
    group = "(?:" + "|".join(alternatives) + ")"
    return "".join(chain) + (group + "?" if ends else group)
