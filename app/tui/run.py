"""A protocol run: its step timeline (status, QA verdict, tokens, cost), the live event feed, and the
operator's actions, each offered only while the run's status machine allows it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Log, Static

from app.domain.actions import RunAction, StepAction
from app.domain.records import StepRun
from app.domain.text import printable, printable_lines
from app.domain.totals import Totals, dollars
from app.tui.api import RunView
from app.tui.base import TuiScreen, new_table
from app.tui.prompts import ConfirmScreen, NoteScreen

RUN_KEYS = {
    RunAction.START: ("s", "Start"),
    RunAction.RUN_NEXT_STEP: ("n", "Next step"),
    RunAction.PAUSE: ("p", "Pause"),
    RunAction.RESUME: ("u", "Resume"),
    RunAction.CANCEL: ("c", "Cancel"),
    RunAction.OPEN_PR: ("o", "Open PR"),
}
STEP_KEYS = {
    StepAction.RETRY: ("r", "Retry"),
    StepAction.RUN_QA: ("v", "Run QA"),
    StepAction.APPROVE: ("a", "Approve"),
}
FEED_LINES = 1000


class RunScreen(TuiScreen):
    DEFAULT_CSS = """
    #summary { height: auto; padding: 0 1; }
    #steps { height: 1fr; }
    #feed { height: 1fr; border-top: solid $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"run_action('{action}')", label) for action, (key, label) in RUN_KEYS.items()),
        *(Binding(key, f"step_action('{action}')", label) for action, (key, label) in STEP_KEYS.items()),
        Binding("g", "reload", "Reload"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.view: RunView | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary", markup=False)
        yield new_table("steps", "#", "Step", "Status", "QA verdict", "Attempts", "Tokens in/out", "Cost")
        yield Log(id="feed", max_lines=FEED_LINES)
        yield Footer()

    async def on_mount(self) -> None:
        self.title = f"Protocol run {self.run_id}"
        await self.action_reload()
        self._follow()

    async def action_reload(self) -> None:
        view = await self.tui.attempt(self.tui.api.run_view(self.run_id))
        if view is None:
            return
        self.view = view
        run = view.run
        self.title = f"{run.name}: {run.title}"
        total = view.usage.total
        stages = "   ".join(
            f"{stage} {t.tokens} tokens, {dollars(t)}" for stage, t in view.usage.by_stage.items() if t.runs
        )
        lines = [
            f"status {run.status}   branch {run.branch_name or '-'}   PR {run.pr_url or '-'}",
            f"tokens in/out {total.input_tokens}/{total.output_tokens}   cost {dollars(total)}",
            stages or "no agent has finished yet",
        ]
        if run.last_error:
            lines.append(f"last error: {run.last_error}")
        self.query_one("#summary", Static).update(printable_lines("\n".join(lines)))
        self._fill_steps(view)
        self.refresh_bindings()

    def _fill_steps(self, view: RunView) -> None:
        rows = []
        for step in view.steps:
            usage = view.by_step.get(step.id, Totals())
            cost = dollars(usage) if usage.runs else "-"
            cells = [
                str(step.step_index), printable(step.name), str(step.status), step.qa_verdict or "-",
                str(step.attempts), f"{usage.input_tokens}/{usage.output_tokens}", cost,
            ]  # fmt: skip
            rows.append((str(step.id), cells))
        self.refill("steps", rows)

    def selected_step(self) -> StepRun | None:
        key = self.selected_key("steps")
        if self.view is None or key is None:
            return None
        return next((s for s in self.view.steps if str(s.id) == key), None)

    def on_data_table_row_highlighted(self) -> None:
        self.refresh_bindings()  # the step actions offered are the highlighted step's

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run_action":
            return self.view is not None and RunAction(str(parameters[0])) in self.view.run_actions()
        if action == "step_action":
            step = self.selected_step()
            return (
                self.view is not None
                and step is not None
                and StepAction(str(parameters[0])) in self.view.step_actions(step)
            )
        return True

    async def action_run_action(self, name: str) -> None:
        action = RunAction(name)
        if action is not RunAction.CANCEL:
            await self._send(self.tui.api.run_action(self.run_id, action), RUN_KEYS[action][1])
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._send(self.tui.api.run_action(self.run_id, action), "Cancel")

        run = self.view.run.name if self.view else str(self.run_id)
        self.app.push_screen(ConfirmScreen(f"Cancel {run} and stop its agent?"), answered)

    async def action_step_action(self, name: str) -> None:
        action, step = StepAction(name), self.selected_step()
        if step is None:
            return
        label = f"{STEP_KEYS[action][1]} step {step.step_index}"
        if action is not StepAction.RETRY:
            await self._send(self.tui.api.step_action(step.id, action), label)
            return

        async def noted(note: str | None) -> None:
            if note is not None:
                await self._send(self.tui.api.step_action(step.id, action, note), label)

        question = f"Retry step {step.step_index} ({step.name}): a note for the agent (optional)"
        self.app.push_screen(NoteScreen(question), noted)

    async def _send(self, call: Awaitable[dict[str, Any]], label: str) -> None:
        if await self.tui.attempt(call) is not None:
            self.notify(f"{label}: sent", markup=False)
        await self.action_reload()

    @work(group="feed", exclusive=True)
    async def _follow(self) -> None:
        """The run's recent history, then its new events as they happen (each one reloads the run)."""
        found = await self.tui.attempt(self.tui.api.history(self.run_id))
        if found is None:
            return
        events, cursor = found
        for event in events:
            self._show(event)
        await self.tui.attempt(self._stream(cursor))

    async def _stream(self, cursor: str | None) -> None:
        async for streamed in self.tui.api.follow(self.run_id, cursor):
            self._show(streamed.event)
            self._reload_soon()

    @work(group="reload", exclusive=True)
    async def _reload_soon(self) -> None:
        """Reload in the background; a newer call cancels a pending one, so a burst of events ends in
        one reload, not one each."""
        await self.action_reload()

    def _show(self, event: dict[str, Any]) -> None:
        when = str(event.get("created_at", ""))[11:19]
        line = f"{when} {event.get('event_type', '?')}: {event.get('message', '')}"
        self.query_one("#feed", Log).write_line(printable(line))
