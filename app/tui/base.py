"""What every screen of the TUI shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen
from textual.widgets import DataTable

if TYPE_CHECKING:
    from app.tui.app import TasksGodzillaTui


class TuiScreen(Screen[None]):
    """A screen of this app: its API and its error reporting at hand."""

    @property
    def tui(self) -> TasksGodzillaTui:
        return cast("TasksGodzillaTui", self.app)

    def selected_key(self, table_id: str) -> str | None:
        """The key of the row under the table's cursor (None for an empty table)."""
        table: DataTable[Any] = self.query_one(f"#{table_id}", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def refill(self, table_id: str, rows: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Replace the table's rows (each a key and its cells), the cursor staying on its row."""
        table: DataTable[Any] = self.query_one(f"#{table_id}", DataTable)
        selected = self.selected_key(table_id)
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if selected is not None and selected in (key for key, _ in rows):
            table.move_cursor(row=table.get_row_index(selected))


def new_table(table_id: str, *columns: str) -> DataTable[Any]:
    """A table moved through by rows (the keyboard's arrows), with its columns."""
    table: DataTable[Any] = DataTable(id=table_id, cursor_type="row")
    table.add_columns(*columns)
    return table
