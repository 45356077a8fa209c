"""The line the CLI prints for a run that stopped says what it waits for and what moves it on."""

from __future__ import annotations

from app.cli.protocols import stopped_message
from tests.support.records import A, run, step


def test_a_step_waiting_for_ci_says_so_and_what_to_do_if_ci_never_reports():
    waiting = step(1, commit_sha=A)
    said = stopped_message("shop/0001", run(), [waiting], auto_qa=False, qa_on_ci=True)
    assert f"waiting for CI to report on {A[:10]}" in said
    assert "TASKSGODZILLA_AUTO_QA_ON_CI" in said
    assert "if CI never reports" in said
    assert f"`protocol qa {waiting.id}`" in said


def test_without_qa_on_ci_a_step_waiting_for_qa_waits_for_a_person():
    waiting = step(1, commit_sha=A)
    said = stopped_message("shop/0001", run(), [waiting], auto_qa=False)
    assert "CI" not in said
    assert said.endswith(
        f"queue its QA with `protocol qa {waiting.id}`, or pass it: `protocol approve {waiting.id}`"
    )


def test_once_ci_reported_the_step_no_longer_waits_for_it():
    reported = step(1, commit_sha=A, ci_status="passed")
    said = stopped_message("shop/0001", run(), [reported], auto_qa=False, qa_on_ci=True)
    assert "waiting for CI" not in said
