"""Agent-produced text made safe to show: escape sequences never reach a terminal or a page as such.

Agent output carries terminal escape sequences (colours, cursor moves, window titles). A terminal
would run them; a page would show noise. `printable` keeps every character visible (`\\x1b` as text)
for the CLI; `strip_terminal_escapes` removes whole sequences for the web console, which then
escapes what is left as HTML.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_IN_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# ECMA-48: CSI (ESC [ or 0x9b … final byte), OSC / DCS / PM / APC strings (… BEL or ESC \), and the
# two-byte escapes (ESC + one character).
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all controls but tab and newline


def printable(text: str) -> str:
    """`text` safe for a terminal: every control character shown as `\\xNN`, none run."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def printable_lines(text: str) -> str:
    """`printable`, keeping newlines and tabs (a multi-line log value, e.g. a traceback, stays readable)."""
    return _CONTROL_IN_LINES.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def strip_terminal_escapes(text: str) -> str:
    """`text` without terminal escape sequences or control characters (tabs and newlines stay)."""
    return _INVISIBLE.sub("", _SEQUENCE.sub("", text.replace("\r\n", "\n")))
