"""Reading a repository's git configuration the way git does, without running git.

`read_config` parses one file in git's syntax (see git-config(1), "CONFIGURATION FILE"): sections
`[name]`, `[name "subsection"]` and the old `[name.subsection]`, variables with or without `= value`,
quotes, escapes, comments and continuation lines. Anything git itself would reject is an error here
too (`ConfigSyntaxError`): the caller refuses what it cannot read rather than guess.

`config_files` finds the files git reads for a working tree: the common `config`, and the
worktree's `config.worktree` (read whenever it exists, whatever `extensions.worktreeConfig` says:
reading more than git does is the safe side).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_CONFIG_BYTES = 1 << 20  # git's own files are a few KiB; a huge one is refused, not read
_ESCAPES = {"n": "\n", "t": "\t", "b": "\b", "\\": "\\", '"': '"'}
_SPACE = frozenset(" \t\n\r")  # git's own isspace() (sane_ctype): not \v, \f or Unicode spaces


class ConfigSyntaxError(ValueError):
    """A config file git would not read either (or one too large to be a real config)."""


@dataclass(frozen=True)
class Entry:
    """One `section.subsection.name = value` line; `value` is None for a bare `name` (boolean true).

    `section` and `name` are lower-cased as git compares them; `subsection` keeps its case.
    """

    section: str
    subsection: str | None
    name: str
    value: str | None

    @property
    def key(self) -> str:
        """The key as git prints it: `section.subsection.name`, section and name lower-cased."""
        middle = f".{self.subsection}" if self.subsection is not None else ""
        return f"{self.section}{middle}.{self.name}"


class _Reader:
    """git's config.c parser, character by character (CRLF read as LF, end of file as a newline)."""

    def __init__(self, text: str) -> None:
        self.text = text.removeprefix("\ufeff").replace("\r\n", "\n")
        self.pos = 0
        self.line = 1

    def next(self) -> str:
        if self.pos >= len(self.text):
            self.pos += 1
            return "\n" if self.pos == len(self.text) + 1 else ""
        char = self.text[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
        if char == "\x00":
            self.fail("a NUL byte")
        return char

    def at_end(self) -> bool:
        return self.pos > len(self.text)

    def fail(self, what: str) -> None:
        raise ConfigSyntaxError(f"line {self.line}: {what}")


def parse_config(text: str) -> list[Entry]:
    """Every entry of a config file's text, in order; ConfigSyntaxError where git would stop."""
    reader = _Reader(text)
    entries: list[Entry] = []
    section: tuple[str, str | None] | None = None
    while True:
        char = reader.next()
        if char == "" or reader.at_end():
            return entries
        if char in _SPACE:
            continue
        if char in "#;":
            while char not in ("\n", ""):
                char = reader.next()
            continue
        if char == "[":
            section = _section_header(reader)
            continue
        if not char.isascii() or not char.isalpha():
            reader.fail("a line that is neither a section, a variable nor a comment")
        if section is None:
            reader.fail("a variable before any section")
        assert section is not None
        name, value = _variable(reader, char)
        entries.append(Entry(section[0], section[1], name, value))


def _section_header(reader: _Reader) -> tuple[str, str | None]:
    name = ""
    while True:
        char = reader.next()
        if char == "]":
            break
        if char in _SPACE:
            subsection = _quoted_subsection(reader, char)
            return _checked_section(reader, name), subsection
        if not (char.isascii() and (char.isalnum() or char in "-.")):
            reader.fail("a malformed section header")
        name += char.lower()
    if not name:
        reader.fail("an empty section name")
    # `[section.Sub]` (deprecated): git lower-cases the whole name, subsection included.
    head, dot, tail = name.partition(".")
    if dot:
        if not head or not tail:
            reader.fail("a malformed section header")
        return head, tail
    return name, None


def _checked_section(reader: _Reader, name: str) -> str:
    if not name or "." in name:
        reader.fail("a malformed section header")
    return name


def _quoted_subsection(reader: _Reader, char: str) -> str:
    while char in _SPACE:
        if char == "\n":
            reader.fail("an unterminated section header")
        char = reader.next()
    if char != '"':
        reader.fail("a subsection without quotes")
    subsection = ""
    while True:
        char = reader.next()
        if char in ("\n", ""):
            reader.fail("an unterminated subsection")
        if char == '"':
            break
        if char == "\\":
            char = reader.next()
            if char in ("\n", ""):
                reader.fail("an unterminated subsection")
        subsection += char
    if reader.next() != "]":
        reader.fail("a section header not closed by ']'")
    return subsection


def _variable(reader: _Reader, first: str) -> tuple[str, str | None]:
    name = first.lower()
    while True:
        char = reader.next()
        if char.isascii() and (char.isalnum() or char == "-"):
            name += char.lower()
            continue
        break
    while char in (" ", "\t"):
        char = reader.next()
    if char in ("\n", ""):
        return name, None
    if char != "=":
        reader.fail(f"a malformed variable {name!r}")
    return name, _value(reader)


def _value(reader: _Reader) -> str:
    value = ""
    spaces = 0
    quoted = comment = False
    while True:
        char = reader.next()
        if char in ("\n", ""):
            if quoted:
                reader.fail("an unterminated quoted value")
            return value
        if comment:
            continue
        if char in _SPACE and not quoted:
            if value:
                spaces += 1
            continue
        if not quoted and char in "#;":
            comment = True
            continue
        value += " " * spaces
        spaces = 0
        if char == "\\":
            char = reader.next()
            if char == "\n":
                continue  # a continuation line
            if char not in _ESCAPES:
                reader.fail("a bad escape in a value")
            value += _ESCAPES[char]
        elif char == '"':
            quoted = not quoted
        else:
            value += char


def read_config(path: Path) -> list[Entry]:
    """The entries of the config file at `path`; [] when there is none (git reads nothing either)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return []
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigSyntaxError(f"larger than {MAX_CONFIG_BYTES} bytes")
    return parse_config(data.decode("utf-8", errors="surrogateescape"))


@dataclass(frozen=True)
class GitDirs:
    """Where a working tree's git data lives: its own git dir, and the common dir it shares."""

    git_dir: Path
    common_dir: Path

    def config_files(self) -> tuple[Path, ...]:
        """The repository-level files git reads, in the order it reads them."""
        return (self.common_dir / "config", self.git_dir / "config.worktree")


def git_dirs(work_tree: Path) -> GitDirs | None:
    """The git dirs of the working tree at `work_tree` (its `.git` folder or `gitdir:` file), or None."""
    dot_git = work_tree / ".git"
    if dot_git.is_dir():
        git_dir = dot_git
    elif dot_git.is_file():
        pointer = dot_git.read_text(errors="surrogateescape").strip()
        if not pointer.startswith("gitdir:"):
            return None
        git_dir = Path(os.path.normpath(work_tree / pointer.removeprefix("gitdir:").strip()))
    else:
        return None
    common = git_dir
    try:
        shared = (git_dir / "commondir").read_text(errors="surrogateescape").strip()
    except FileNotFoundError:
        shared = ""
    if shared:
        common = Path(os.path.normpath(git_dir / shared))
    return GitDirs(git_dir, common)
