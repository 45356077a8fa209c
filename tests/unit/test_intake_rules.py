"""Issue intake's rules (app.domain.intake) and schedule due times (app.domain.schedules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.ci import Provider
from app.domain.intake import IntakeAction, Issue, decide, issue_body, issue_title
from app.domain.schedules import check_cron, latest_due
from app.domain.statuses import ProtocolStatus as P
from app.errors import InvalidInputError


def _issue(*labels: str, open: bool = True) -> Issue:
    return Issue(provider=Provider.GITHUB, repository="a/b", number=1, title="t", open=open, labels=labels)


@pytest.mark.parametrize(
    ("issue", "status", "by_intake", "action"),
    [
        (_issue("agent"), None, False, IntakeAction.CREATE),
        (_issue("Agent"), None, False, IntakeAction.CREATE),  # labels match whatever their case
        (_issue("agent"), P.RUNNING, False, IntakeAction.NOTHING),  # one run per issue
        (_issue("agent", "blocked"), None, False, IntakeAction.WAIT),
        (_issue("agent", "blocked"), P.RUNNING, False, IntakeAction.NOTHING),  # a running run carries on
        (_issue("agent", open=False), P.RUNNING, False, IntakeAction.CANCEL),
        (_issue("bug"), P.PLANNING, False, IntakeAction.CANCEL),
        (_issue("agent", open=False), P.COMPLETED, False, IntakeAction.NOTHING),  # finished: left alone
        (_issue("agent"), P.CANCELLED, True, IntakeAction.CREATE),  # cancelled by intake: a new run
        (_issue("agent"), P.CANCELLED, False, IntakeAction.NOTHING),  # an operator's cancel stands
        (_issue("agent"), P.FAILED, False, IntakeAction.NOTHING),
        (_issue("bug"), None, False, IntakeAction.NOTHING),
    ],
)
def test_what_an_issue_asks_of_its_run(issue, status, by_intake, action):
    decided = decide(
        issue, label="agent", blocked_label="blocked", run_status=status, cancelled_by_intake=by_intake
    )
    assert decided.action is action


def test_untrusted_titles_and_bodies_are_made_visible_and_capped():
    assert issue_title(4, "  Fix\u200b\u202e the\tlogin\n ") == "Fix the login"
    assert issue_title(4, "\u200b") == "Issue #4"
    assert issue_body("a\x00b\u2066c\r\nd") == "abc\nd"
    assert len(issue_body("x" * 50_000)) == 20_000


def test_cron_lines_are_checked_and_the_latest_due_time_is_found():
    assert check_cron(" 0 6  * * 1 ") == "0 6 * * 1"
    for bad in ("* * * *", "61 * * * *", "@weekly", "0 6 * * 1 2026"):
        with pytest.raises(InvalidInputError):
            check_cron(bad)
    made = datetime(2026, 12, 7, 5, 0, 30, tzinfo=UTC)  # a Monday
    now = datetime(2026, 12, 14, 7, 59, tzinfo=UTC)  # the next Monday
    assert latest_due("0 6 * * 1", now, since=made) == datetime(2026, 12, 14, 6, 0, tzinfo=UTC)
    assert latest_due("0 6 * * 1", datetime(2026, 12, 7, 6, 0, 5, tzinfo=UTC), since=made) == datetime(
        2026, 12, 7, 6, 0, tzinfo=UTC
    )
    assert latest_due("0 5 * * 1", datetime(2026, 12, 7, 5, 10, tzinfo=UTC), since=made) is None  # before it
