"""The projects table and a project's protocol runs table (with status filters)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header

from app.domain.statuses import ProtocolStatus as P
from app.domain.totals import UsageGroup, dollars
from app.tui.base import TuiScreen, new_table
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
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        self.title = "Projects"
        yield Header()
        yield new_table("projects", "ID", "Name", "Status", "Base branch", "Repository")
        yield Footer()

    async def on_screen_resume(self) -> None:
        await self.action_reload()  # shown first, or back from a project

    async def action_reload(self) -> None:
        projects = await self.tui.attempt(self.tui.api.projects())
        if projects is None:
            return
        self.projects = {str(p["id"]): p for p in projects}
        rows = [
            (key, [key, p["name"], p["status"], p["base_branch"], _repository(p)])
            for key, p in self.projects.items()
        ]
        self.refill("projects", rows)

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
        Binding("u", "usage", "Usage by"),
        Binding("g", "reload", "Reload"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, project: dict[str, Any]) -> None:
        super().__init__()
        self.project = project
        self.filter = "0"
        self.usage_group = USAGE_GROUPS[0]

    def compose(self) -> ComposeResult:
        yield Header()
        yield new_table("runs", "#", "Name", "Title", "Status", "Branch", "Updated")
        yield new_table("usage", "Usage by", "Runs", "Tokens", "Cost")
        yield Footer()

    async def on_screen_resume(self) -> None:
        await self.action_reload()  # shown first, or back from a run whose status may have changed

    async def action_usage(self) -> None:
        """The project's tokens and cost by the next grouping: month, day, engine, model."""
        self.usage_group = USAGE_GROUPS[(USAGE_GROUPS.index(self.usage_group) + 1) % len(USAGE_GROUPS)]
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
        rows = [
            (str(run.id), [
                str(run.number), run.name, run.title, str(run.status), run.branch_name or "",
                run.updated_at.strftime("%Y-%m-%d %H:%M"),
            ])
            for run in runs
        ]  # fmt: skip
        self.refill("runs", rows)
        usage = await self.tui.attempt(self.tui.api.project_usage(self.project["id"], self.usage_group))
        if usage is not None:
            table = [
                (r.key, [r.key, str(r.totals.runs), str(r.totals.tokens), dollars(r.totals)])
                for r in usage.rows
            ]
            total = usage.total
            table.append(
                (
                    "total",
                    [f"total by {self.usage_group}", str(total.runs), str(total.tokens), dollars(total)],
                )
            )
            self.refill("usage", table)

    def action_open(self) -> None:
        key = self.selected_key("runs")
        if key is not None:
            self.app.push_screen(RunScreen(int(key)))

    def on_data_table_row_selected(self) -> None:
        self.action_open()


USAGE_GROUPS = (UsageGroup.MONTH, UsageGroup.DAY, UsageGroup.ENGINE, UsageGroup.MODEL)


def _repository(project: dict[str, Any]) -> str:
    return str(project.get("git_url") or project.get("local_path") or "")
