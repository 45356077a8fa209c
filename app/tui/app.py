"""The Textual application: a stack of screens over one API client; the server's refusals are shown
as notifications (its own words), never as a traceback."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar, TypeVar

from textual.app import App
from textual.binding import Binding, BindingType

from app.api_client import ApiClient
from app.domain.text import printable
from app.errors import TasksGodzillaError
from app.tui.api import TuiApi
from app.tui.lists import ProjectsScreen

T = TypeVar("T")


class TasksGodzillaTui(App[None]):
    TITLE = "TasksGodzilla"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", show=True, priority=True)]
    ERROR_SECONDS = 15.0  # long enough to read a refusal through a slow SSH session

    def __init__(self, api: TuiApi) -> None:
        super().__init__()
        self.api = api

    def on_mount(self) -> None:
        self.sub_title = self.api.client.base_url
        self.push_screen(ProjectsScreen())

    async def attempt(self, call: Awaitable[T]) -> T | None:
        """The call's result, or None after showing why the server (or the network) refused it."""
        try:
            return await call
        except TasksGodzillaError as exc:
            self.show_error(exc.message)
        except Exception as exc:  # a bug or a transport failure: one line, the app stays usable
            self.show_error(f"unexpected error ({type(exc).__name__}): {exc}")
        return None

    def show_error(self, message: str) -> None:
        self.notify(printable(message), severity="error", timeout=self.ERROR_SECONDS, markup=False)


async def run_tui(base_url: str, token: str | None) -> None:
    async with ApiClient(base_url, token) as client:
        await TasksGodzillaTui(TuiApi(client)).run_async()
