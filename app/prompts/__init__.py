"""Prompt templates shipped in the package, each versioned by a hash of its text.

Every agent run records the version it used (`planning@3f2a9c1b0d4e`), so a result can always be
traced to the exact words that produced it: the hash covers the fragments a template pastes in too
(the planning prompt's `$plan_template` and `$step_template`). Templates use `$name` placeholders
(string.Template): values are inserted verbatim and never re-read as template syntax.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

PROMPTS = ("discovery", "planning", "execution", "qa")
FRAGMENTS = ("plan_template", "step_template")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str
    includes: tuple[PromptTemplate, ...] = ()  # the fragments its placeholders paste in

    @property
    def version(self) -> str:
        """`<name>@<first 12 hex of sha256>`: changes whenever a word of the template, or of a
        fragment it includes, changes."""
        digest = hashlib.sha256(self.text.encode("utf-8"))
        for fragment in self.includes:
            digest.update(b"\0" + fragment.name.encode() + b"\0" + fragment.text.encode("utf-8"))
        return f"{self.name}@{digest.hexdigest()[:12]}"

    def render(self, **values: str) -> str:
        """The prompt with every placeholder filled; a missing value is a programming error."""
        try:
            return Template(self.text).substitute(values)
        except KeyError as missing:
            raise ValueError(f"prompt {self.name!r} needs a value for {missing}") from None


@cache
def load(name: str) -> PromptTemplate:
    """A template (or fragment) by name, read once from the package."""
    if name not in PROMPTS + FRAGMENTS:
        raise ValueError(f"unknown prompt {name!r}")
    text = resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")
    pasted = () if name in FRAGMENTS else tuple(load(f) for f in FRAGMENTS if f"${f}" in text)
    return PromptTemplate(name=name, text=text, includes=pasted)
