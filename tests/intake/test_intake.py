"""Issue intake: labelled issues (GitHub `issues`, GitLab `Issue Hook`) become runs, once; the run is
reconciled with the issue (closed or unlabelled → cancelled; labelled again → a new run only after
intake cancelled the last); blocked issues wait; the poll repairs a lost delivery; progress is
commented on the issue through the forge's real REST paths."""

from __future__ import annotations

import pytest

from app.domain.statuses import ProtocolStatus as P
from app.services import controls, intake, intake_progress
from app.store import protocols
from app.store.transitions import move_protocol
from app.web.keys import SERVICES
from tests.intake.support import (
    LABEL,
    REPO,
    deliver,
    github_issue_event,
    gitlab_issue_event,
    intake_client,
    intake_project,
    issue_row,
    kinds,
    runs_of,
)
from tests.support.fake_forge import running_fake_forge


@pytest.fixture
async def forge():
    async with running_fake_forge() as running:
        yield running


def _event(provider: str, issue: dict, action: str = "opened") -> dict:
    if provider == "github":
        return github_issue_event(issue, action)
    return gitlab_issue_event(
        issue, {"opened": "open", "closed": "close", "labeled": "update"}.get(action, action)
    )


def _relabel(forge, provider: str, number: int, labels: tuple[str, ...], *, open: bool = True) -> dict:
    issue = forge.issues[(REPO, number)]
    return forge.add_issue(
        provider, REPO, number, title=issue["title"], body=issue.get("body") or issue.get("description"),
        labels=labels, open=open,
    )  # fmt: skip


@pytest.mark.parametrize("provider", ["github", "gitlab"])
async def test_a_labelled_issue_becomes_one_run_linked_both_ways(
    database_url, database, aiohttp_client, forge, provider
):
    project = await intake_project(database, provider=provider)
    client = await intake_client(aiohttp_client, database_url, forge)
    issue = forge.add_issue(
        provider, REPO, 7, title="Fix the login", body="Steps:\n1. log in", labels=(LABEL, "bug")
    )

    status, answer = await deliver(client, provider, _event(provider, issue), "d-open")
    assert status == 202, answer
    [run] = await runs_of(database, project.id)
    assert (run.title, run.description, run.status) == ("Fix the login", "Steps:\n1. log in", "pending")
    row = await issue_row(database, project.id, 7)
    assert row.protocol_run_id == run.id
    assert row.url == issue.get("html_url", issue.get("web_url"))

    # The same delivery again, and another delivery about the same issue (edited): still one run.
    status, answer = await deliver(client, provider, _event(provider, issue), "d-open")
    assert (status, answer["status"]) == (200, "duplicate")
    status, _ = await deliver(client, provider, _event(provider, issue, "edited"), "d-edit")
    assert len(await runs_of(database, project.id)) == 1
    assert await kinds(database, project.id) == ["intake.run_created"]

    svc = client.app[SERVICES]
    assert await intake_progress.post_progress(svc) == 1
    [comment] = forge.issue_comments[(REPO, 7)]
    assert run.name in comment
    assert f"https://tg.example.test/console/protocols/{run.id}" in comment
    path = (
        "/repos/acme/shop/issues/7/comments"
        if provider == "github"
        else "/api/v4/projects/acme%2Fshop/issues/7/notes"
    )
    assert [c.path for c in forge.calls("POST")] == [path]
    assert await intake_progress.post_progress(svc) == 0  # each milestone once


@pytest.mark.parametrize("provider", ["github", "gitlab"])
async def test_closing_the_issue_cancels_its_run_and_says_why(
    database_url, database, aiohttp_client, forge, provider
):
    project = await intake_project(database, provider=provider)
    client = await intake_client(aiohttp_client, database_url, forge)
    issue = forge.add_issue(provider, REPO, 3, labels=(LABEL,))
    await deliver(client, provider, _event(provider, issue), "d-1")
    closed = _relabel(forge, provider, 3, (LABEL,), open=False)
    status, _ = await deliver(client, provider, _event(provider, closed, "closed"), "d-2")
    assert status == 202
    [run] = await runs_of(database, project.id)
    assert run.status == "cancelled"
    assert await kinds(database, project.id) == ["intake.run_created", "intake.run_cancelled"]
    await intake_progress.post_progress(client.app[SERVICES])
    assert (
        forge.issue_comments[(REPO, 3)][-1] == f"Protocol run {run.name} was cancelled: the issue was closed"
    )

    # Reopened and labelled: intake cancelled the last run, so a new one starts.
    reopened = _relabel(forge, provider, 3, (LABEL,))
    await deliver(client, provider, _event(provider, reopened, "reopened"), "d-3")
    first, second = await runs_of(database, project.id)
    assert (first.status, second.status) == ("cancelled", "pending")
    assert (await issue_row(database, project.id, 3)).protocol_run_id == second.id


async def test_removing_the_label_cancels_and_an_operators_cancel_is_never_replaced(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database)
    client = await intake_client(aiohttp_client, database_url, forge)
    issue = forge.add_issue("github", REPO, 4, labels=(LABEL,))
    await deliver(client, "github", github_issue_event(issue), "d-1")
    unlabelled = _relabel(forge, "github", 4, ("bug",))
    await deliver(client, "github", github_issue_event(unlabelled, "unlabeled"), "d-2")
    [run] = await runs_of(database, project.id)
    assert run.status == "cancelled"
    async with database.read() as conn:
        from app.store import events

        [cancelled] = await events.list_page(
            conn, project_id=project.id, event_types=["intake.run_cancelled"]
        )
    assert cancelled.payload["reason"] == f"the label {LABEL!r} was removed"

    # Labelled again: a new run; an operator then cancels it; labelled events after that change nothing.
    await deliver(
        client, "github", github_issue_event(_relabel(forge, "github", 4, (LABEL,)), "labeled"), "d-3"
    )
    _, second = await runs_of(database, project.id)
    await controls.cancel(client.app[SERVICES], second.id)
    await deliver(client, "github", github_issue_event(forge.issues[(REPO, 4)], "edited"), "d-4")
    assert len(await runs_of(database, project.id)) == 2


async def test_a_blocked_issue_waits_until_unblocked(database_url, database, aiohttp_client, forge):
    project = await intake_project(database, intake_blocked_label="on-hold")
    client = await intake_client(aiohttp_client, database_url, forge)
    issue = forge.add_issue("github", REPO, 5, labels=(LABEL, "on-hold"))
    await deliver(client, "github", github_issue_event(issue), "d-1")
    await deliver(client, "github", github_issue_event(issue, "edited"), "d-2")
    assert await runs_of(database, project.id) == []
    assert await kinds(database, project.id) == ["intake.waiting"]  # said once
    await deliver(
        client, "github", github_issue_event(_relabel(forge, "github", 5, (LABEL,)), "unlabeled"), "d-3"
    )
    [run] = await runs_of(database, project.id)
    assert await kinds(database, project.id) == ["intake.waiting", "intake.run_created"]
    assert run.status == "pending"


async def test_an_issue_of_no_intake_project_or_a_pull_request_is_ignored(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database, label=None)
    client = await intake_client(aiohttp_client, database_url, forge)
    issue = forge.add_issue("github", REPO, 6, labels=(LABEL,))
    status, answer = await deliver(client, "github", github_issue_event(issue), "d-1")
    assert (status, answer["status"]) == (200, "ignored")
    assert "no project takes in issues" in answer["detail"]
    pull = github_issue_event({**issue, "pull_request": {"url": "x"}})
    status, answer = await deliver(client, "github", pull, "d-2")
    assert (status, answer["status"]) == (200, "ignored")
    assert await runs_of(database, project.id) == []


async def test_hidden_characters_are_stripped_and_the_body_is_capped(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database)
    client = await intake_client(aiohttp_client, database_url, forge)
    body = "safe\u202e txt\u200b\x00 end\n" + "x" * 30_000
    issue = forge.add_issue("github", REPO, 8, title="Fix\u200b the\u202e login", body=body, labels=(LABEL,))
    assert (await deliver(client, "github", github_issue_event(issue), "d-1"))[0] == 202
    [run] = await runs_of(database, project.id)
    assert run.title == "Fix the login"
    assert run.description.startswith("safe txt end\nxxx")
    assert len(run.description) == 20_000


async def test_the_poll_takes_in_an_issue_whose_delivery_was_lost_and_cancels_when_it_goes(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database, provider="gitlab")
    client = await intake_client(aiohttp_client, database_url, forge)
    svc = client.app[SERVICES]
    forge.add_issue("gitlab", REPO, 11, title="Lost webhook", labels=(LABEL,))
    forge.add_issue("gitlab", REPO, 12, title="Not ours", labels=("bug",))
    assert await intake.poll_issues(svc) == 1
    [run] = await runs_of(database, project.id)
    assert run.title == "Lost webhook"
    [listing] = [c for c in forge.calls("GET") if c.path.endswith("/issues")]
    assert (listing.path, listing.query["labels"], listing.query["state"]) == (
        "/api/v4/projects/acme%2Fshop/issues", LABEL, "opened",
    )  # fmt: skip
    assert await intake.poll_issues(svc) == 1
    assert len(await runs_of(database, project.id)) == 1

    _relabel(forge, "gitlab", 11, (LABEL,), open=False)  # closed; its webhook lost too
    await intake.poll_issues(svc)
    [run] = await runs_of(database, project.id)
    assert run.status == "cancelled"
    assert await kinds(database, project.id) == ["intake.run_created", "intake.run_cancelled"]


async def test_the_runs_progress_is_commented_once_per_milestone(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database)
    client = await intake_client(aiohttp_client, database_url, forge)
    svc = client.app[SERVICES]
    await deliver(
        client, "github", github_issue_event(forge.add_issue("github", REPO, 9, labels=(LABEL,))), "d-1"
    )
    [run] = await runs_of(database, project.id)
    await intake_progress.post_progress(svc)
    async with database.transaction() as conn:
        for target in (P.PLANNING, P.PLANNED, P.RUNNING):
            run = await move_protocol(conn, run.id, target, expected_version=run.version)
        run = await protocols.update_fields(
            conn,
            run.id,
            expected_version=run.version,
            pr_url="https://github.com/acme/shop/pull/2",
            pr_number=2,
        )
    assert await intake_progress.post_progress(svc) == 2
    async with database.transaction() as conn:
        await move_protocol(conn, run.id, P.COMPLETED, expected_version=run.version)
    assert await intake_progress.post_progress(svc) == 1
    assert await intake_progress.post_progress(svc) == 0
    said = forge.issue_comments[(REPO, 9)]
    assert [line.split(" ", 3)[-1] for line in said[1:]] == [
        "started.",
        "opened its pull request: https://github.com/acme/shop/pull/2",
        "completed.",
    ]
    assert await kinds(database, project.id, "intake.commented") == ["intake.commented"] * 4


async def test_the_intake_label_is_set_through_the_api(database_url, database, aiohttp_client, forge):
    project = await intake_project(database, label=None)
    client = await intake_client(aiohttp_client, database_url, forge)
    changed = await client.patch(
        f"/projects/{project.id}", json={"intake_label": "agent", "intake_blocked_label": "wait"}
    )
    assert changed.status == 200
    assert ((await changed.json())["intake_label"], (await changed.json())["intake_blocked_label"]) == (
        "agent",
        "wait",
    )
    hidden = await client.patch(f"/projects/{project.id}", json={"intake_label": "age\u200bnt"})
    assert hidden.status == 422
    assert (await hidden.json())["error"]["details"]["field"] == "intake_label"
    issue = forge.add_issue("github", REPO, 1, labels=("agent",))
    assert (await deliver(client, "github", github_issue_event(issue), "d-1"))[0] == 202
    assert len(await runs_of(database, project.id)) == 1


async def test_the_taken_in_issues_are_listed_with_their_runs(database_url, database, aiohttp_client, forge):
    project = await intake_project(database)
    client = await intake_client(aiohttp_client, database_url, forge)
    await deliver(
        client, "github", github_issue_event(forge.add_issue("github", REPO, 2, labels=(LABEL,))), "d-1"
    )
    [run] = await runs_of(database, project.id)
    listed = await (await client.get(f"/projects/{project.id}/intake/issues")).json()
    [issue] = listed["items"]
    assert (issue["number"], issue["url"], issue["protocol_run_id"], issue["open"]) == (
        2, f"https://github.com/{REPO}/issues/2", run.id, True,
    )  # fmt: skip


async def test_a_comment_the_forge_refuses_waits_for_the_next_pass(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database, provider="gitlab")
    client = await intake_client(aiohttp_client, database_url, forge)
    svc = client.app[SERVICES]
    issue = forge.add_issue("gitlab", REPO, 5, labels=(LABEL,))
    await deliver(client, "gitlab", gitlab_issue_event(issue), "d-1")
    del forge.issues[(REPO, 5)]  # the forge answers 404 for now
    assert await intake_progress.post_progress(svc) == 0
    assert (await issue_row(database, project.id, 5)).posted == []
    forge.issues[(REPO, 5)] = issue
    assert await intake_progress.post_progress(svc) == 1
    assert len(forge.issue_comments[(REPO, 5)]) == 1


async def test_a_reopened_issue_that_is_blocked_waits_without_repeating_old_comments(
    database_url, database, aiohttp_client, forge
):
    project = await intake_project(database)
    client = await intake_client(aiohttp_client, database_url, forge)
    svc = client.app[SERVICES]
    await deliver(
        client, "github", github_issue_event(forge.add_issue("github", REPO, 6, labels=(LABEL,))), "d-1"
    )
    await deliver(
        client, "github", github_issue_event(_relabel(forge, "github", 6, (LABEL,), open=False)), "d-2"
    )
    assert await intake_progress.post_progress(svc) == 2  # taken in, cancelled
    blocked = _relabel(forge, "github", 6, (LABEL, "blocked"))
    await deliver(client, "github", github_issue_event(blocked, "reopened"), "d-3")
    assert len(await runs_of(database, project.id)) == 1
    assert await intake_progress.post_progress(svc) == 0
    await deliver(
        client, "github", github_issue_event(_relabel(forge, "github", 6, (LABEL,)), "unlabeled"), "d-4"
    )
    assert len(await runs_of(database, project.id)) == 2
    assert await intake_progress.post_progress(svc) == 1
    assert len(forge.issue_comments[(REPO, 6)]) == 3
