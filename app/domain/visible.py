"""Text a person gives us (titles, names, notes, descriptions): refused when it hides characters.

A bidirectional override (U+202E) shows `main‮gnp` as `mainpng`; a zero-width space makes two
names that look equal differ. Terminal escapes in agent output are shown escaped (app.domain.text);
what enters through the API, the console or the CLI is refused instead, with a 422 naming the
field and the code point. Refused: Unicode categories Cf (format: bidi controls, zero-width
characters, BOM, soft hyphen, tags), Zl and Zp (line and paragraph separators), Co (private use),
Cs (surrogates), Cn (unassigned), the Hangul fillers, which render as nothing, and in a one-line
text Cc (controls but tab). A multi-line text (a description, a note) keeps its controls but NUL:
they are shown escaped wherever it is shown, as agent output is. Letters of every script, and emoji, pass;
an emoji built with a zero-width joiner (U+200D) does not.
"""

from __future__ import annotations

import unicodedata
from functools import partial
from typing import Annotated

from pydantic import AfterValidator

from app.errors import InvalidInputError

_HIDDEN_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
_FILLERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0"})


def hidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character of `text` that hides or disguises (as `U+XXXX`), or None.

    A line may hold a tab but no other control character; a multi-line text keeps them all but NUL.
    """
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            if char == "\t" or (multiline and char != "\x00"):  # NUL: no database stores it
                continue
            return f"U+{ord(char):04X}"
        if char in _FILLERS or category in _HIDDEN_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def _problem(code_point: str) -> str:
    return f"must not contain invisible, control or bidirectional formatting characters ({code_point})"


def check_visible_text(text: str, *, field: str, multiline: bool = False) -> str:
    """`text` unchanged when no character of it hides, else InvalidInputError naming `field`."""
    if (found := hidden_character(text, multiline=multiline)) is not None:
        raise InvalidInputError(f"{field}: {_problem(found)}", field=field)
    return text


def _visible(text: str, *, multiline: bool) -> str:
    if (found := hidden_character(text, multiline=multiline)) is not None:
        raise ValueError(_problem(found))  # pydantic names the field
    return text


# Request-model types: a one-line name or title, and a text that may span lines.
VisibleLine = Annotated[str, AfterValidator(partial(_visible, multiline=False))]
VisibleText = Annotated[str, AfterValidator(partial(_visible, multiline=True))]
