"""GitHub deliveries become signals: captured payload shapes, and the variations that matter."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from app.domain.ci import CiResult, CiSignal, IgnoredSignal, MergeSignal, Provider
from app.forges.github import parse_github

PAYLOADS = Path(__file__).with_name("payloads") / "github"
SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def load(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def test_a_completed_check_suite_is_a_ci_result_for_its_branch_and_commit():
    signal = parse_github("check_suite", load("check_suite.completed"))
    assert signal == CiSignal(
        provider=Provider.GITHUB,
        repository="acme/shop",
        branches=("0001-add-login",),
        sha=SHA,
        result=CiResult.PASSED,
        source="check_suite",
        name="GitHub Actions",
        summary="check suite GitHub Actions success",
        url="https://api.github.com/repos/acme/shop/check-suites/118578147",
    )


@pytest.mark.parametrize(
    ("conclusion", "result"),
    [("success", "passed"), ("failure", "failed"), ("timed_out", "failed"), ("startup_failure", "failed")],
)
def test_conclusions_that_judge_the_code(conclusion, result):
    payload = load("check_suite.completed")
    payload["check_suite"]["conclusion"] = conclusion
    signal = parse_github("check_suite", payload)
    assert isinstance(signal, CiSignal)
    assert signal.result == result


@pytest.mark.parametrize("conclusion", ["neutral", "skipped", "cancelled", "stale", "action_required", None])
def test_conclusions_that_do_not_judge_the_code_are_ignored(conclusion):
    payload = load("check_suite.completed")
    payload["check_suite"]["conclusion"] = conclusion
    assert isinstance(parse_github("check_suite", payload), IgnoredSignal)


@pytest.mark.parametrize("action", ["requested", "rerequested"])
def test_an_unfinished_check_suite_is_ignored(action):
    payload = load("check_suite.completed")
    payload["action"] = action
    signal = parse_github("check_suite", payload)
    assert isinstance(signal, IgnoredSignal)
    assert action in signal.reason


def test_a_forks_check_suite_is_ignored_even_on_our_branch_and_commit():
    signal = parse_github("check_suite", load("check_suite.from_fork"))
    assert signal == IgnoredSignal(
        provider=Provider.GITHUB, reason="check suite of a fork", repository="acme/shop"
    )


def test_a_check_suite_whose_head_repository_is_another_is_a_fork():
    payload = load("check_suite.completed")
    payload["check_suite"]["head_repository"] = {"full_name": "mallory/shop"}
    assert isinstance(parse_github("check_suite", payload), IgnoredSignal)


def test_a_failed_check_run_carries_its_output_as_the_summary():
    signal = parse_github("check_run", load("check_run.completed"))
    assert isinstance(signal, CiSignal)
    assert (signal.result, signal.source, signal.name) == (CiResult.FAILED, "check_run", "test (3.12)")
    assert signal.branches == ("0001-add-login",)
    assert "2 tests failed" in signal.summary
    assert "test_bad_password FAILED" in signal.summary
    assert signal.url == "https://github.com/acme/shop/runs/128620228"


def test_a_passing_check_run_is_not_the_verdict():
    payload = load("check_run.completed")
    payload["check_run"]["conclusion"] = "success"
    signal = parse_github("check_run", payload)
    assert isinstance(signal, IgnoredSignal)
    assert "check suite decides" in signal.reason


def test_a_check_run_of_a_fork_pull_request_is_ignored():
    payload = load("check_run.completed")
    fork_pull = copy.deepcopy(load("check_suite.from_fork")["check_suite"]["pull_requests"][0])
    payload["check_run"]["pull_requests"] = [fork_pull]
    assert isinstance(parse_github("check_run", payload), IgnoredSignal)


def test_a_completed_workflow_run():
    signal = parse_github("workflow_run", load("workflow_run.completed"))
    assert isinstance(signal, CiSignal)
    assert (signal.result, signal.name, signal.sha) == (CiResult.FAILED, "CI", SHA)
    assert signal.url == "https://github.com/acme/shop/actions/runs/236768374"


def test_a_workflow_run_from_a_fork_is_ignored():
    payload = load("workflow_run.completed")
    payload["workflow_run"]["head_repository"] = {"id": 990001, "full_name": "mallory/shop"}
    assert isinstance(parse_github("workflow_run", payload), IgnoredSignal)


def test_a_status_names_the_branches_containing_its_commit():
    signal = parse_github("status", load("status.success"))
    assert isinstance(signal, CiSignal)
    assert (signal.result, signal.source, signal.name) == (CiResult.PASSED, "status", "ci/jenkins")
    assert signal.branches == ("0001-add-login",)
    assert signal.summary == "ci/jenkins success: Build #512 passed"


@pytest.mark.parametrize(("state", "result"), [("failure", "failed"), ("error", "failed")])
def test_failing_statuses(state, result):
    payload = load("status.success") | {"state": state}
    signal = parse_github("status", payload)
    assert isinstance(signal, CiSignal)
    assert signal.result == result


def test_a_pending_status_is_ignored():
    assert isinstance(parse_github("status", load("status.success") | {"state": "pending"}), IgnoredSignal)


def test_a_merged_pull_request():
    assert parse_github("pull_request", load("pull_request.closed")) == MergeSignal(
        provider=Provider.GITHUB,
        repository="acme/shop",
        branch="0001-add-login",
        pr_number=2,
        sha=SHA,
        url="https://github.com/acme/shop/pull/2",
    )


def test_a_pull_request_closed_unmerged_or_still_open_is_ignored():
    closed = load("pull_request.closed")
    closed["pull_request"]["merged"] = False
    assert isinstance(parse_github("pull_request", closed), IgnoredSignal)
    opened = load("pull_request.closed") | {"action": "opened"}
    assert isinstance(parse_github("pull_request", opened), IgnoredSignal)


def test_a_merged_pull_request_from_a_fork_is_ignored():
    payload = load("pull_request.closed")
    payload["pull_request"]["head"]["repo"] = {"id": 990001, "full_name": "mallory/shop"}
    assert isinstance(parse_github("pull_request", payload), IgnoredSignal)


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}),
        ("push", {"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}}),
        ("check_suite", {"action": "completed"}),  # no repository
        ("check_suite", []),
        ("status", "not an object"),
    ],
)
def test_other_events_and_odd_shapes_are_ignored_not_crashed_on(event, payload):
    assert isinstance(parse_github(event, payload), IgnoredSignal)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("check_suite", "head_sha"), "not-a-sha"),
        (("check_suite", "head_sha"), SHA[:12]),
        (("check_suite", "head_sha"), 12345),
        (("check_suite", "head_branch"), "-rf"),
        (("check_suite", "head_branch"), "a\nb"),
        (("check_suite", "head_branch"), None),
        (("repository", "full_name"), "../etc"),
    ],
)
def test_unusable_identifiers_are_never_looked_up(path, value):
    payload = load("check_suite.completed")
    payload[path[0]][path[1]] = value
    assert isinstance(parse_github("check_suite", payload), IgnoredSignal)


def test_links_that_are_not_http_are_dropped_and_text_is_made_printable():
    payload = load("status.success") | {
        "target_url": "javascript:alert(1)",
        "description": "ok\x1b[31m red\x00",
    }
    signal = parse_github("status", payload)
    assert isinstance(signal, CiSignal)
    assert signal.url is None
    assert "\x1b" not in signal.summary
    assert "\x00" not in signal.summary
