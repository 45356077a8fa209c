"""Review payloads → signals, the origin report.sh's shapes, and the pure rules around them."""

from __future__ import annotations

import pytest

from app.domain.ci import CiResult, IgnoredSignal, Provider, ReviewSignal, RunCiSignal
from app.domain.ci_logs import log_tail
from app.domain.redaction import Redactor
from app.domain.reviews import MARKER, Answer, parse_replies, review_instructions, shown
from app.errors import InvalidInputError
from app.forges.origin_report import origin_signal
from app.forges.reviews import parse_review
from tests.support.ci_runs import payload

GITHUB, GITLAB = Provider.GITHUB, Provider.GITLAB


def test_a_changes_requested_review_carries_its_body_author_and_association():
    signal = parse_review(GITHUB, "pull_request_review", payload("github", "pull_request_review.submitted"))
    assert isinstance(signal, ReviewSignal)
    assert (signal.repository, signal.branch, signal.pr_number) == ("acme/shop", "0001-add-login", 1)
    assert (signal.author, signal.association, signal.state) == (
        "octocat",
        "COLLABORATOR",
        "changes_requested",
    )
    [comment] = signal.comments
    assert (comment.id, comment.kind) == (80, "review")


def test_an_inline_comment_carries_its_path_and_line():
    signal = parse_review(
        GITHUB, "pull_request_review_comment", payload("github", "pull_request_review_comment.created")
    )
    assert isinstance(signal, ReviewSignal)
    [comment] = signal.comments
    assert (comment.id, comment.kind, comment.path, comment.line) == (
        2001,
        "review_comment",
        "work/01.txt",
        1,
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p: p["review"].update(state="approved"), "a review that is approved: nothing to address"),
        (lambda p: p.update(action="edited"), "pull_request_review edited"),
        (lambda p: p["review"].update(state="commented", body=""), "a review without a body: its inline"),
        (lambda p: p["pull_request"]["head"]["repo"].update(full_name="fork/shop"), "a review of a pull"),
        (lambda p: p["review"].update(body=f"Done.\n\n{MARKER}"), "a reply the service posted itself"),
    ],
)
def test_what_a_review_delivery_does_not_ask_is_ignored_with_its_reason(change, reason):
    body = payload("github", "pull_request_review.submitted")
    change(body)
    signal = parse_review(GITHUB, "pull_request_review", body)
    assert isinstance(signal, IgnoredSignal)
    assert signal.reason.startswith(reason)


def test_a_gitlab_note_keeps_its_discussion_and_system_notes_are_ignored():
    note = payload("gitlab", "note.merge_request")
    signal = parse_review(GITLAB, "Note Hook", note)
    assert isinstance(signal, ReviewSignal)
    assert (signal.author, signal.author_id, signal.comments[0].discussion_id) == (
        "root", 7, "6a9c1750b37d513a43987b574953fceb50b03ce7"
    )  # fmt: skip
    note["object_attributes"]["system"] = True
    assert isinstance(parse_review(GITLAB, "Note Hook", note), IgnoredSignal)
    assert parse_review(GITLAB, "Pipeline Hook", note) is None  # not a review event: others parse it


def test_the_origin_script_s_shapes_need_a_run_id_and_a_known_state():
    github = {"state": "failure", "branches": [{"name": "b"}], "target_url": "", "ref": "b"}
    signal = origin_signal(GITHUB, "status", github, {"protocol_run_id": "12"})
    assert signal == RunCiSignal(provider=GITHUB, protocol_run_id=12, result=CiResult.FAILED, branch="b")
    with pytest.raises(InvalidInputError, match=r"switch to this service's scripts/ci/report\.sh"):
        origin_signal(GITHUB, "status", github, {})
    with pytest.raises(InvalidInputError, match="protocol_run_id must be"):
        origin_signal(GITHUB, "status", github, {"protocol_run_id": "x1"})
    with pytest.raises(InvalidInputError, match="neither success nor failure"):
        origin_signal(GITHUB, "status", github | {"state": "pending"}, {"protocol_run_id": "1"})
    # Ours (a commit SHA, a repository) is not the origin's: the usual parser takes it.
    assert origin_signal(GITHUB, "status", payload("github", "status.success"), {}) is None
    gitlab = {"object_kind": "pipeline", "object_attributes": {"status": "success", "ref": "b"}}
    assert origin_signal(GITLAB, "Pipeline Hook", gitlab, {"protocol_run_id": "3"}) is not None
    assert origin_signal(GITLAB, "Pipeline Hook", payload("gitlab", "pipeline.push"), {}) is None


def test_hidden_characters_are_shown_and_the_round_is_capped():
    assert shown("a\u202eb\u200bc") == "a<U+202E>b<U+200B>c"
    comments = [
        {"id": i, "key": f"note-{i}", "author": "octocat", "body": "x" * 300, "path": None, "line": None}
        for i in range(1, 11)
    ]
    prompt = review_instructions(comments, limit=1000)
    assert prompt.count("<reviewer-comment ") == 2
    assert "(8 more comment(s) were left out: past the size cap.)" in prompt


def test_only_replies_to_the_round_s_comments_with_a_known_answer_are_kept():
    output = {
        "replies": [
            {"comment_id": "note-1", "answer": "done", "text": "ok"},
            {"comment_id": "note-2", "answer": "maybe", "text": "?"},
            {"comment_id": "note-3", "answer": "disagreement", "text": "no"},
            {"comment_id": 1, "answer": "done", "text": "an id without its kind"},
        ]
    }
    assert parse_replies(output, ["note-1", "note-2"]) == {"note-1": (Answer.DONE, "ok")}
    assert parse_replies(None, ["note-1"]) == {}


def test_a_log_tail_is_redacted_before_it_is_cut():
    secret = "s3cr3t-value-0123456789"
    raw = "x" * 50 + "\n" + f"token={secret}\n" + "last line\n"
    tail = log_tail(raw, 40, Redactor({"TOKEN": secret}))
    assert secret not in tail
    assert tail.endswith("last line\n")
    assert "token=********" in tail
    assert len(tail) <= 40
