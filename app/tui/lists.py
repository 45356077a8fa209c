"""The projects table and a project's protocol runs table (with status filters)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header

from app.domain.statuses import ProtocolStatus as P
from app.tui.base import TuiScreen
from app.tui.run import RunScreen

# Filter key → (label, statuses shown); an empty tuple shows every run.
FILTERS: dict[str, tuple[str, tuple[P, ...]]] = {
    "0": ("all", ()),
    "1": ("active", (P.PENDING, P.PLANNING, P.PLANNED, P.RUNNING)),
    "2": ("stopped", (P.PAUSED, P.BLOCKED)),
    "3": ("completed", (P.COMPLETED,)),
    "4": ("failed", (P.FAILED, P.CANCELLED)),
}


class ProjectsScreen(TuiScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("g", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="projects", cursor_type="row")
        yield Footer()

    async def on_mount(self) -> None:
        self.title = "Projects"
        self.query_one(DataTable).add_columns("ID", "Name", "Status", "Base branch", "Repository")
        await self.action_reload()

    async def action_reload(self) -> None:
        projects = await self.tui.attempt(self.tui.api.projects())
        if projects is None:
            return
        self.projects = {str(p["id"]): p for p in projects}
        table = self.query_one(DataTable)
        table.clear()
        for key, p in self.projects.items():
            where = p.get("git_url") or p.get("local_path") or ""
            table.add_row(key, p["name"], p["status"], p["base_branch"], where, key=key)

    def action_open(self) -> None:
        key = self.selected_key("projects")
        if key is not None:
            self.app.push_screen(RunsScreen(self.projects[key]))

    def on_data_table_row_selected(self) -> None:
        self.action_open()


class RunsScreen(TuiScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        *(Binding(key, f"filter('{key}')", label.capitalize()) for key, (label, _) in FILTERS.items()),
        Binding("g", "reload", "Reload"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, project: dict[str, Any]) -> None:
        super().__init__()
        self.project = project
        self.filter = "0"

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="runs", cursor_type="row")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("#", "Name", "Title", "Status", "Branch", "Updated")
        await self.action_reload()

    async def action_filter(self, key: str) -> None:
        self.filter = key
        await self.action_reload()

    async def action_reload(self) -> None:
        label, statuses = FILTERS[self.filter]
        self.title = f"{self.project['name']}: protocol runs ({label})"
        runs = await self.tui.attempt(self.tui.api.runs(self.project["id"], statuses))
        if runs is None:
            return
        table = self.query_one(DataTable)
        table.clear()
        for run in runs:
            table.add_row(
                str(run.number), run.name, run.title, str(run.status), run.branch_name or "",
                run.updated_at.strftime("%Y-%m-%d %H:%M"), key=str(run.id),
            )  # fmt: skip

    def action_open(self) -> None:
        key = self.selected_key("runs")
        if key is not None:
            self.app.push_screen(RunScreen(int(key)))

    def on_data_table_row_selected(self) -> None:
        self.action_open()
