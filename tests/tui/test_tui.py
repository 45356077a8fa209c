"""The TUI driven by keys (Textual's pilot) against a live server: every screen and every action,
each checked on the server's side, refusals shown in the server's words, and the live feed."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.widgets import DataTable, Input, Log, Static

from app.api_client import ApiClient
from app.services import controls
from app.tui.api import TuiApi
from app.tui.app import TasksGodzillaTui
from app.tui.lists import ProjectsScreen, RunsScreen
from app.tui.prompts import ConfirmScreen, NoteScreen
from app.tui.run import RunScreen
from tests.support.workflow import wait_for

SIZE = (160, 50)


def _rows(app, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def _errors(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def _offered(app) -> set[str]:
    return {key for key, active in app.screen.active_bindings.items() if active.enabled}


async def _open_run(pilot, app, title: str) -> RunScreen:
    """From wherever the app stands: back to the projects, into the project, onto the run by title."""
    while not isinstance(app.screen, ProjectsScreen):
        await pilot.press("escape")
    await wait_for(lambda: _rows(app, "projects"), what="the projects table")
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, RunsScreen) and _rows(app, "runs"), what="the runs")
    titles = [row[2] for row in _rows(app, "runs")]
    await pilot.press(*["down"] * titles.index(title), "enter")
    await wait_for(lambda: isinstance(app.screen, RunScreen) and app.screen.view, what=f"run {title}")
    return app.screen


async def _run_status(api, run_id: int) -> str:
    return (await api.get(f"/protocols/{run_id}"))["status"]


async def _step(api, step_id: int) -> dict:
    return await api.get(f"/steps/{step_id}")


async def _event_types(api, run_id: int) -> list[str]:
    return [e["event_type"] async for e in api.pages(f"/protocols/{run_id}/events")]


async def test_projects_runs_with_filters_and_a_runs_timeline_usage_and_offered_actions(seeded, tui):
    app = tui()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: _rows(app, "projects"), what="the projects table")
        assert _rows(app, "projects")[0][1:3] == ["shop", "ready"]
        await pilot.press("enter")
        await wait_for(
            lambda: isinstance(app.screen, RunsScreen) and len(_rows(app, "runs")) == 3, what="runs"
        )
        assert [(r[2], r[3]) for r in _rows(app, "runs")] == [
            ("Check it", "running"), ("Build it", "running"), ("Plan me", "pending"),
        ]  # fmt: skip
        # The project's usage: this month, then (u, u) by engine; planning's and unpriced runs count.
        month = datetime.now(UTC).strftime("%Y-%m")
        whole = ["3", "2195", "$0.0525 + 1 run of unknown cost"]
        await wait_for(
            lambda: _rows(app, "usage") == [[month, *whole], ["total by month", *whole]], what="usage"
        )
        await pilot.press("u", "u")
        await wait_for(lambda: _rows(app, "usage")[:1] == [["command", *whole]], what="usage by engine")
        await pilot.press("3")  # completed: none yet
        await wait_for(lambda: "completed" in app.screen.title and not _rows(app, "runs"), what="filter")
        await pilot.press("1")  # active: all three
        await wait_for(lambda: len(_rows(app, "runs")) == 3, what="the active filter")

        screen = await _open_run(pilot, app, "Check it")
        rows = _rows(app, "steps")
        assert [r[:4] for r in rows] == [
            ["1", "check one", "needs_qa", "-"],
            ["2", "check two", "failed", "-"],
        ]
        assert rows[0][5:] == ["1200/340", "$0.0425"]  # tokens in/out and cost, from its agent run
        assert rows[1][5:] == ["50/5", "unknown"]  # an unpriced run is not free
        summary = str(screen.query_one("#summary", Static).render())
        # The run's total counts planning too (on no step), and says what it cannot price.
        assert "tokens in/out 1750/445   cost $0.0525 + 1 run of unknown cost" in summary
        assert "planning 600 tokens, $0.01" in summary
        feed = screen.query_one("#feed", Log)
        await wait_for(lambda: any("step.needs_qa" in line for line in feed.lines), what="the history")
        # Step 1 waits for QA: run QA and approve are offered; retry, start, resume, next step are not.
        offered = _offered(app)
        assert {"p", "c", "o", "v", "a"} <= offered
        assert not {"s", "u", "n", "r"} & offered
        await pilot.press("down")  # step 2 failed: retry or approve, not QA
        await wait_for(
            lambda: {"r", "a"} <= _offered(app) and "v" not in _offered(app), what="step 2's actions"
        )

        # The live feed: a change made elsewhere shows up, and the run on screen follows it.
        await controls.pause(seeded.svc, seeded.reviewing.id)
        await wait_for(lambda: any("protocol.paused" in line for line in feed.lines), what="the live event")
        await wait_for(
            lambda: "status paused" in str(screen.query_one("#summary", Static).render()), what="the reload"
        )
        await pilot.press("escape")  # back to the runs, which show the run's new status
        assert isinstance(app.screen, RunsScreen)
        await wait_for(lambda: ["Check it", "paused"] in [r[2:4] for r in _rows(app, "runs")], what="runs")
        await pilot.press("escape")
        assert isinstance(app.screen, ProjectsScreen)
    assert not _errors(app)


async def test_run_actions_reach_the_server_and_a_refusal_shows_its_message(seeded, tui, api):
    app = tui()
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(pilot, app, "Plan me")
        await pilot.press("s")
        await wait_for(lambda: _run_status_is(api, seeded.pending.id, "planning"), what="the run started")
        await wait_for(lambda: "c" in _offered(app), what="cancel offered")
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("y")
        await wait_for(lambda: _run_status_is(api, seeded.pending.id, "cancelled"), what="the run cancelled")

        run_id = seeded.running.id
        await _open_run(pilot, app, "Build it")
        await pilot.press("n")
        await wait_for(lambda: _has_event(api, run_id, "step.run_requested"), what="the step queued")
        await pilot.press("n")  # it waits in the queue (no worker here): the server refuses a second
        await wait_for(lambda: any("queued already" in m for m in _errors(app)), what="the refusal shown")
        await pilot.press("o")
        await wait_for(lambda: _has_event(api, run_id, "pr.requested"), what="publishing queued")
        await pilot.press("p")
        await wait_for(lambda: _run_status_is(api, run_id, "paused"), what="the run paused")
        await wait_for(lambda: "u" in _offered(app) and "p" not in _offered(app), what="resume offered")
        await pilot.press("u")
        await wait_for(lambda: _run_status_is(api, run_id, "running"), what="the run resumed")


async def test_step_actions_reach_the_server_and_retry_asks_for_a_note(seeded, tui, api):
    app = tui()
    first, second = seeded.steps["check1"], seeded.steps["check2"]
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(pilot, app, "Check it")
        await pilot.press("v")
        await wait_for(lambda: _has_event(api, seeded.reviewing.id, "qa.requested"), what="QA queued")
        await pilot.press("a")
        await wait_for(lambda: _step_status_is(api, first.id, "completed"), what="step 1 approved")
        await pilot.press("down")
        await wait_for(lambda: "r" in _offered(app), what="retry offered on step 2")
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, NoteScreen), what="the note prompt")
        note = "use the other API"
        await pilot.press(*[("space" if c == " " else c) for c in note])
        assert app.screen.query_one(Input).value == note
        await pilot.press("enter")
        await wait_for(lambda: _step_status_is(api, second.id, "pending"), what="step 2 retried")
        assert (await _step(api, second.id))["operator_note"] == note
    assert not _errors(app)


async def test_a_refused_token_is_shown_as_the_servers_message_not_a_traceback(seeded, tui):
    app = tui(token_ok=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: _errors(app), what="the refusal")
        assert isinstance(app.screen, ProjectsScreen)
        assert not _rows(app, "projects")
        await pilot.press("g")  # still usable: asking again is refused again, in the same words
        await wait_for(lambda: len(_errors(app)) == 2, what="the second refusal")
    assert all("token" in m.lower() for m in _errors(app)), _errors(app)


async def _run_status_is(api, run_id: int, status: str) -> bool:
    return await _run_status(api, run_id) == status


async def _step_status_is(api, step_id: int, status: str) -> bool:
    return (await _step(api, step_id))["status"] == status


async def _has_event(api, run_id: int, kind: str) -> bool:
    return kind in await _event_types(api, run_id)


async def test_an_unreachable_server_is_a_notification_and_the_app_stays_up():
    async with ApiClient("http://127.0.0.1:9", "any-token-0123456789") as client:
        app = TasksGodzillaTui(TuiApi(client))
        app.ERROR_SECONDS = 600
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: _errors(app), what="the notification")
            assert "cannot reach the server at http://127.0.0.1:9" in _errors(app)[0]
            await pilot.press("q")
        assert app.return_code == 0
