"""The pure CI rules: which project and step a result is about, what it does, when a run waits."""

from __future__ import annotations

import itertools

import pytest

from app.domain.ci import (
    CiAction,
    CiResult,
    CiSignal,
    MergeSignal,
    Provider,
    auto_merge_blocker,
    awaits_merge,
    ci_action,
    ci_fix_instructions,
    ci_target,
    fix_ci_limit,
    merge_refusal,
    repeats_a_result,
    repository_slug,
    serves_repository,
)
from app.domain.rework import must_work_again
from app.domain.statuses import ProtocolStatus, StepStatus
from app.domain.workflow import JobName, next_work
from tests.support.records import A, B, C, project, run, step


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        ("https://github.com/acme/shop.git", "acme/shop"),
        ("https://github.com/acme/shop", "acme/shop"),
        ("https://gitlab.example.test/group/sub/shop.git", "group/sub/shop"),
        ("git@github.com:acme/shop.git", "acme/shop"),
        ("ssh://git@github.com/acme/shop.git", "acme/shop"),
        ("https://token@github.com/acme/shop/", "acme/shop"),
        ("/srv/git/shop.git", None),
        ("file:///srv/git/shop.git", None),
        ("https://github.com/shop", None),
        ("", None),
        (None, None),
    ],
)
def test_repository_slug(url, slug):
    assert repository_slug(url) == slug


def test_which_projects_serve_a_repository():
    assert serves_repository(project(forge_repo="Acme/Shop"), Provider.GITHUB, "acme/shop")
    assert serves_repository(project(git_url="git@github.com:acme/shop.git"), Provider.GITHUB, "acme/shop")
    assert serves_repository(project(ci_provider=None, forge_repo="acme/shop"), Provider.GITLAB, "acme/shop")
    assert not serves_repository(
        project(ci_provider="gitlab", forge_repo="acme/shop"), Provider.GITHUB, "acme/shop"
    )
    assert not serves_repository(project(forge_repo="acme/other"), Provider.GITHUB, "acme/shop")
    assert not serves_repository(project(), Provider.GITHUB, "acme/shop")  # a local path names no repository


def test_a_result_counts_for_the_step_whose_commit_is_the_runs_head():
    plan = [step(1, commit_sha=A, status="completed"), step(2, commit_sha=B)]
    assert ci_target(run(head_sha=B), plan, B).step == plan[1]
    assert ci_target(run(head_sha=B), plan, B.upper()).step == plan[1]


def test_a_result_for_an_older_commit_or_an_unknown_one_counts_for_no_step():
    plan = [step(1, commit_sha=A, status="completed"), step(2, commit_sha=B)]
    older = ci_target(run(head_sha=B), plan, A)
    assert older.step is None
    assert "older commit" in older.reason
    unknown = ci_target(run(head_sha=B), plan, C)
    assert unknown.step is None
    assert "not the commit of any step" in unknown.reason


# Written out by hand: (step status, result, QA on CI) -> action. Every other combination records.
ACTIONS = {
    ("needs_qa", "failed", False): "block",
    ("needs_qa", "failed", True): "block",
    ("completed", "failed", False): "block",
    ("completed", "failed", True): "block",
    ("needs_qa", "passed", True): "qa",
}


@pytest.mark.parametrize(
    ("status", "result", "qa_on_ci"), list(itertools.product(StepStatus, CiResult, [False, True]))
)
def test_what_a_result_does_to_its_step(status, result, qa_on_ci):
    expected = ACTIONS.get((str(status), str(result), qa_on_ci), "record")
    assert ci_action(step(status=status), result, qa_on_ci=qa_on_ci) == CiAction(expected)


def test_ci_success_never_completes_a_step_it_only_lets_qa_run():
    waiting = step(status="needs_qa", ci_status="passed")
    kwargs = {"auto_qa": False, "qa_on_ci": True}
    assert [w.job for w in next_work(ProtocolStatus.RUNNING, [waiting], **kwargs)] == [JobName.RUN_QUALITY]
    untested = step(status="needs_qa", ci_status=None)
    assert next_work(ProtocolStatus.RUNNING, [untested], **kwargs) == []
    failed_ci = step(status="needs_qa", ci_status="failed")
    assert next_work(ProtocolStatus.RUNNING, [failed_ci], **kwargs) == []
    assert next_work(ProtocolStatus.RUNNING, [waiting], auto_qa=False, qa_on_ci=False) == []


def test_a_run_published_at_its_head_waits_for_the_merge():
    done = [step(1, status="completed", commit_sha=B)]
    assert [w.job for w in next_work(ProtocolStatus.RUNNING, done, auto_qa=True)] == [JobName.OPEN_PR]
    assert next_work(ProtocolStatus.RUNNING, done, auto_qa=True, awaiting_merge=True) == []
    assert awaits_merge(run(pr_number=3, published_sha=B, head_sha=B))
    assert not awaits_merge(run(pr_number=3, published_sha=A, head_sha=B))  # new commits since
    assert not awaits_merge(run(pr_number=None, published_sha=None))


def test_a_step_redoes_its_work_only_for_the_very_commit_that_was_rejected():
    failed = step(status="running", commit_sha=A, ci_status="failed", last_error="CI failed (pytest): boom")
    assert must_work_again(failed, A)
    assert not must_work_again(failed, B)  # a newer attempt already committed: reuse it
    assert not must_work_again(failed, None)
    assert not must_work_again(step(commit_sha=A, ci_status="passed"), A)
    assert not must_work_again(step(commit_sha=A, ci_status=None), A)  # a crash, not a rejection
    assert must_work_again(step(commit_sha=A, qa_verdict="fail"), A)  # QA failed it
    assert not must_work_again(step(commit_sha=A, qa_verdict="fail"), B)
    assert must_work_again(step(commit_sha=A, operator_note="use the v2 API"), A)
    instructions = ci_fix_instructions(failed)
    assert "CI failed (pytest): boom" in instructions
    assert A[:12] in instructions


def test_fix_ci_limit_per_project_or_default():
    assert fix_ci_limit(project(), 2) == 2
    assert fix_ci_limit(project(fix_ci_attempts=0), 2) == 0
    assert fix_ci_limit(project(fix_ci_attempts=1), 0) == 1


def test_which_merges_complete_a_run():
    merge = MergeSignal(
        provider=Provider.GITHUB, repository="acme/shop", branch="0001-add-login", pr_number=3
    )
    for status in ("running", "paused", "blocked"):
        assert merge_refusal(run(status=status, pr_number=3), merge) is None
    assert merge_refusal(run(pr_number=None), merge) is None  # a PR opened by hand
    assert "not the run's own #4" in (merge_refusal(run(pr_number=4), merge) or "")
    for status in ("completed", "cancelled", "failed", "planning"):
        assert merge_refusal(run(status=status, pr_number=3), merge) is not None


def test_a_result_ci_reported_already_for_the_same_check_and_commit_is_a_repeat():
    signal = CiSignal(
        provider=Provider.GITHUB,
        repository="acme/shop",
        sha=B,
        result=CiResult.FAILED,
        source="status",
        name="ci",
    )
    seen = [{"sha": B, "source": "status", "name": "ci"}]
    blocked = step(2, commit_sha=B, status="blocked", ci_status="failed")
    assert repeats_a_result(blocked, signal, seen)
    assert not repeats_a_result(blocked, signal, []), "nothing recorded yet"
    assert not repeats_a_result(blocked, signal, [{"sha": B, "source": "status", "name": "lint"}])
    assert not repeats_a_result(blocked, signal, [{"sha": A, "source": "status", "name": "ci"}])
    assert not repeats_a_result(step(2, commit_sha=B, ci_status="passed"), signal, seen), "a new result"


_DONE = dict(status="completed", ci_status="passed")


@pytest.mark.parametrize(
    ("run_fields", "steps", "blocker"),
    [
        ({}, [step(1, commit_sha=A, **_DONE), step(2, commit_sha=B, **_DONE)], None),
        ({"status": "paused"}, [step(1, commit_sha=B, **_DONE)], "0001-add-login is paused"),
        ({}, [], "not every step is completed"),
        (
            {},
            [step(1, commit_sha=A, **_DONE), step(2, commit_sha=B, ci_status="passed")],
            "not every step is completed",
        ),
        (
            {"published_sha": A},
            [step(1, commit_sha=B, **_DONE)],
            "its PR/MR is not published at the run's head",
        ),
        (
            {"pr_number": None},
            [step(1, commit_sha=B, **_DONE)],
            "its PR/MR is not published at the run's head",
        ),
        ({}, [step(1, commit_sha=B, status="completed")], f"CI has not passed on {B[:12]}"),
        (
            {},
            [step(1, commit_sha=B, status="completed", ci_status="failed")],
            f"CI has not passed on {B[:12]}",
        ),
        # CI passed on an earlier step's commit, not on the head (the last step's).
        (
            {},
            [step(1, commit_sha=B, **_DONE), step(2, commit_sha=A, **_DONE)],
            f"CI has not passed on {B[:12]}",
        ),
    ],
)
def test_when_a_run_may_be_merged_by_itself(run_fields, steps, blocker):
    published = run(**{"pr_number": 1, "published_sha": B, "head_sha": B, **run_fields})
    assert auto_merge_blocker(published, steps) == blocker
