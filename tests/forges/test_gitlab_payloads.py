"""GitLab deliveries become signals: Pipeline Hook (branch and merge request refs), Merge Request Hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domain.ci import CiResult, CiSignal, IgnoredSignal, MergeSignal, Provider
from app.forges.gitlab import parse_gitlab

PAYLOADS = Path(__file__).with_name("payloads") / "gitlab"
SHA = "bcbb5ec396a2c0f828686f14fac9b80b780504f2"


def load(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def test_a_branch_pipeline():
    signal = parse_gitlab("Pipeline Hook", load("pipeline.push"))
    assert signal == CiSignal(
        provider=Provider.GITLAB,
        repository="acme/shop",
        branches=("0001-add-login",),
        sha=SHA,
        result=CiResult.PASSED,
        source="pipeline",
        name="pipeline 31",
        summary="pipeline success",
        url="https://gitlab.example.test/acme/shop/-/pipelines/31",
    )


def test_a_merge_request_pipeline_runs_on_the_mr_ref_and_names_the_source_branch():
    signal = parse_gitlab("Pipeline Hook", load("pipeline.merge_request"))
    assert isinstance(signal, CiSignal)
    assert signal.branches == ("0001-add-login",)
    assert signal.pr_number == 3
    assert signal.result is CiResult.FAILED
    assert signal.summary == "pipeline failed: failed jobs pytest (script_failure)"


def test_a_merge_request_pipeline_without_its_mr_is_found_by_number():
    payload = load("pipeline.merge_request") | {"merge_request": None}
    signal = parse_gitlab("Pipeline Hook", payload)
    assert isinstance(signal, CiSignal)
    assert (signal.branches, signal.pr_number) == ((), 3)


def test_a_pipeline_of_a_merge_request_from_a_fork_is_ignored():
    payload = load("pipeline.merge_request")
    payload["merge_request"]["source_project_id"] = 999
    assert isinstance(parse_gitlab("Pipeline Hook", payload), IgnoredSignal)


@pytest.mark.parametrize("status", ["running", "pending", "canceled", "skipped", "created", "manual"])
def test_unfinished_or_undecided_pipelines_are_ignored(status):
    payload = load("pipeline.push")
    payload["object_attributes"]["status"] = status
    assert isinstance(parse_gitlab("Pipeline Hook", payload), IgnoredSignal)


def test_tag_pipelines_are_ignored():
    payload = load("pipeline.push")
    payload["object_attributes"]["tag"] = True
    assert isinstance(parse_gitlab("Pipeline Hook", payload), IgnoredSignal)


def test_a_merged_merge_request():
    assert parse_gitlab("Merge Request Hook", load("merge_request.merge")) == MergeSignal(
        provider=Provider.GITLAB,
        repository="acme/shop",
        branch="0001-add-login",
        pr_number=3,
        sha=SHA,
        url="https://gitlab.example.test/acme/shop/-/merge_requests/3",
    )


def test_other_merge_request_actions_and_forks_are_ignored():
    opened = load("merge_request.merge")
    opened["object_attributes"].update(action="open", state="opened")
    assert isinstance(parse_gitlab("Merge Request Hook", opened), IgnoredSignal)
    fork = load("merge_request.merge")
    fork["object_attributes"]["source_project_id"] = 999
    assert isinstance(parse_gitlab("Merge Request Hook", fork), IgnoredSignal)


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("Push Hook", {"project": {"path_with_namespace": "acme/shop"}}),
        ("Job Hook", {}),
        ("Pipeline Hook", {"object_kind": "pipeline"}),
        ("Pipeline Hook", None),
    ],
)
def test_other_events_and_odd_shapes_are_ignored(event, payload):
    assert isinstance(parse_gitlab(event, payload), IgnoredSignal)
