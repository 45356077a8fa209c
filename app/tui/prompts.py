"""Modal prompts: a note for a retried step, and a yes/no before cancelling a run."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label

PROMPT_CSS = """
NoteScreen, ConfirmScreen { align: center middle; }
#prompt { width: 80%; height: auto; border: thick $accent; padding: 1 2; background: $surface; }
"""


class NoteScreen(ModalScreen[str | None]):
    """A line of text (the note may be empty); Escape gives up."""

    DEFAULT_CSS = PROMPT_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "give_up", "Cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(self.question, markup=False)
            yield Input(id="note", placeholder="Enter to send, Escape to cancel", max_length=4000)
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_give_up(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = PROMPT_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(self.question, markup=False)
            yield Label("y: yes    n: no")
        yield Footer()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
