"""Names, titles and notes that hide characters (bidirectional overrides, zero-width, BOM…) are refused."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from app.domain.visible import VisibleLine, VisibleText, check_visible_text, hidden_character
from app.errors import InvalidInputError

HIDDEN = [
    *(chr(c) for c in range(0x202A, 0x202F)),  # LRE RLE PDF LRO RLO
    *(chr(c) for c in range(0x2066, 0x206A)),  # LRI RLI FSI PDI
    *(chr(c) for c in range(0x200B, 0x2010)),  # ZWSP ZWNJ ZWJ LRM RLM
    "\ufeff", "\u061c", "\u00ad", "\u2060", "\u2028", "\u2029", "\u3164", "\U000e0041", "\ue000",
    "\x00", "\x1b", "\x7f", "\x85",
]  # fmt: skip


@pytest.mark.parametrize("char", HIDDEN)
def test_hidden_characters_are_refused_anywhere_in_a_line(char: str) -> None:
    for text in (f"{char}title", f"ti{char}tle", f"title{char}"):
        assert hidden_character(text) == f"U+{ord(char):04X}"
        with pytest.raises(InvalidInputError) as refused:
            check_visible_text(text, field="title")
        assert refused.value.details == {"field": "title"}
        assert f"U+{ord(char):04X}" in refused.value.message


@pytest.mark.parametrize(
    "text", ["Add a login page", "Café für Größe", "日本語のタイトル", "سلام", "emoji 🚀", "a\tb"]
)
def test_visible_text_passes(text: str) -> None:
    assert hidden_character(text) is None
    assert check_visible_text(text, field="title") == text


def test_lines_refuse_controls_and_texts_keep_them_for_escaping() -> None:
    assert hidden_character("one\ntwo") == "U+000A"
    assert hidden_character("one\x1btwo") == "U+001B"
    assert hidden_character("one\r\ntwo\tthree \x1b[31m", multiline=True) is None
    assert hidden_character("one\n\u202etwo", multiline=True) == "U+202E"
    assert hidden_character("one\x00two", multiline=True) == "U+0000"


class Body(BaseModel):
    title: VisibleLine
    note: VisibleText = ""


def test_the_annotated_types_name_the_field() -> None:
    assert Body(title="fine", note="many\nlines").note == "many\nlines"
    for data, field in [({"title": "a\u202eb"}, "title"), ({"title": "ok", "note": "x\u200by"}, "note")]:
        with pytest.raises(ValidationError) as refused:
            Body(**data)
        assert refused.value.errors()[0]["loc"] == (field,)
        assert "U+20" in refused.value.errors()[0]["msg"]
