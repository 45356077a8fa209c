"""The shapes a known secret can take in an agent's output, as regular-expression token sequences.

A secret leaks as written, but also encoded on its way through a shell or a JSON file: JSON-escaped,
percent-encoded, base64 (standard or URL-safe, padded or not) and hex. A secret inside a longer
base64 text is encoded differently for each of its three possible offsets modulo 3, and its first and
last characters there depend on the bytes around it: each alignment contributes its stable core, the
characters that only the secret's own bits decide.

Each form is a sequence of tokens (one character, or a small class such as `[+-]`), so that
`app.domain.redaction` can allow line breaks between any two of them and merge all forms of all
secrets into one trie-shaped pattern.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

Tokens = tuple[str, ...]

MIN_FORM_TOKENS = 6  # shorter encoded cores would match ordinary text by chance
MAX_HEX_SECRET_BYTES = 128  # the hex of a long key is not worth a pattern that long

# Characters that differ between standard and URL-safe base64 match either.
_BASE64_EITHER = {"+": "[+\\-]", "-": "[+\\-]", "/": "[/_]", "_": "[/_]"}


def literal(text: str) -> Tokens:
    """`text` character for character."""
    return tuple(re.escape(char) for char in text)


def base64_cores(secret: bytes) -> list[Tokens]:
    """The stable base64 characters of `secret` at each offset modulo 3, either alphabet."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret + b"\0\0\0").decode("ascii")
        # Character j carries bits [6j, 6j + 6) of the stream; the secret's bits are
        # [8 * offset, 8 * (offset + len)). Keep the characters wholly inside them.
        first = -(-8 * offset // 6)
        end = 8 * (offset + len(secret)) // 6
        core = encoded[first:end]
        cores.append(tuple(_BASE64_EITHER.get(char, char) for char in core))
    return cores


def hex_form(secret: bytes) -> Tokens:
    """`secret` as hex digits, either case."""
    return tuple(char if char.isdigit() else f"[{char}{char.upper()}]" for char in secret.hex())


def forms_of(secret: str) -> list[Tokens]:
    """Every form of `secret` worth looking for, each long enough not to match by chance."""
    raw = secret.encode("utf-8")
    found = [literal(secret)]
    for variant in (json.dumps(secret)[1:-1], quote(secret, safe="")):
        if variant != secret:
            found.append(literal(variant))
    found += base64_cores(raw)
    if len(raw) <= MAX_HEX_SECRET_BYTES:
        found.append(hex_form(raw))
    return [tokens for tokens in found if len(tokens) >= MIN_FORM_TOKENS]


def canonical(text: str) -> str:
    """A matched text reduced so that every form of one secret maps to a few keys: line breaks and
    whitespace dropped, the URL-safe base64 alphabet read as the standard one."""
    return _BREAKS.sub("", text).translate(_TO_STANDARD)


def canonical_keys(secret: str) -> set[str]:
    """The canonical texts a match of one of `secret`'s forms can reduce to (hex in lower case)."""
    raw = secret.encode("utf-8")
    keys = {canonical(secret), canonical(json.dumps(secret)[1:-1]), canonical(quote(secret, safe=""))}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0\0").decode("ascii")
        keys.add(canonical(encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]))
    keys.add(raw.hex())
    return keys


_BREAKS = re.compile(r"\s|\\{1,4}[nrt]")
_TO_STANDARD = str.maketrans("-_", "+/")
