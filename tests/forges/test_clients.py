"""The GitHub and GitLab REST clients against the fake forge, which speaks both APIs' wire format."""

from __future__ import annotations

import socket

import pytest

from app.errors import CIError, InvalidInputError, NotFoundError, PermissionDeniedError, spec_for
from app.forges.client import MergeAnswer
from app.forges.github_client import GitHubClient
from app.forges.gitlab_client import GitLabClient
from tests.support.fake_forge import GITHUB_TOKEN, GITLAB_TOKEN, running_fake_forge


async def test_github_open_find_update_comment_read():
    async with (
        running_fake_forge(head_sha=lambda branch: "a" * 40) as forge,
        GitHubClient(forge.url, "acme/shop", GITHUB_TOKEN) as client,
    ):
        assert await client.find_open("0001-add-login") is None
        pull = await client.create(branch="0001-add-login", base="main", title="Add login", body="why")
        assert (pull.number, pull.state, pull.head_sha) == (1, "open", "a" * 40)
        assert pull.url == "https://github.com/acme/shop/pull/1"
        found = await client.find_open("0001-add-login")
        assert found is not None
        assert found.number == 1
        assert await client.find_open("0002-other") is None
        updated = await client.update(1, title="Add login v2", body="because")
        assert updated.number == 1
        await client.comment(1, "all steps completed")
        forge.merge("acme/shop", 1)
        merged = await client.get(1)
        assert merged.merged
        assert await client.find_open("0001-add-login") is None

    create = forge.calls("POST")[0]
    assert create.path == "/repos/acme/shop/pulls"
    assert create.body == {"title": "Add login", "head": "0001-add-login", "base": "main", "body": "why"}
    assert create.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert create.headers["Accept"] == "application/vnd.github+json"
    assert create.headers["X-GitHub-Api-Version"] == "2022-11-28"
    lookup = forge.calls("GET")[0]
    assert lookup.query == {"head": "acme:0001-add-login", "state": "open"}
    assert forge.calls("PATCH")[0].body == {"title": "Add login v2", "body": "because"}
    assert forge.comments[("acme/shop", 1)] == ["all steps completed"]
    assert forge.calls("POST")[1].path == "/repos/acme/shop/issues/1/comments"


async def test_gitlab_open_find_update_note_read():
    async with (
        running_fake_forge(head_sha=lambda branch: "b" * 40) as forge,
        GitLabClient(f"{forge.url}/api/v4", "acme/sub/shop", GITLAB_TOKEN) as client,
    ):
        assert await client.find_open("0001-add-login") is None
        mr = await client.create(branch="0001-add-login", base="main", title="Add login", body="why")
        assert (mr.number, mr.state, mr.head_sha) == (1, "open", "b" * 40)
        assert mr.url == "https://gitlab.example.test/acme/sub/shop/-/merge_requests/1"
        found = await client.find_open("0001-add-login")
        assert found is not None
        assert found.number == 1
        await client.update(1, title="Add login v2", body="because")
        await client.comment(1, "all steps completed")
        forge.merge("acme/sub/shop", 1)
        assert (await client.get(1)).merged
        assert await client.find_open("0001-add-login") is None

    create = forge.calls("POST")[0]
    # The project id is the URL-encoded path, sent encoded.
    assert create.path == "/api/v4/projects/acme%2Fsub%2Fshop/merge_requests"
    assert create.headers["PRIVATE-TOKEN"] == GITLAB_TOKEN
    assert "Authorization" not in create.headers
    assert create.body == {
        "source_branch": "0001-add-login",
        "target_branch": "main",
        "title": "Add login",
        "description": "why",
        "remove_source_branch": False,
    }
    assert forge.calls("GET")[0].query == {"source_branch": "0001-add-login", "state": "opened"}
    assert forge.calls("PUT")[0].body == {"title": "Add login v2", "description": "because"}
    assert forge.calls("POST")[1].path == "/api/v4/projects/acme%2Fsub%2Fshop/merge_requests/1/notes"
    assert forge.comments[("acme/sub/shop", 1)] == ["all steps completed"]


async def test_a_refused_token_is_a_permission_error_that_never_shows_the_token():
    async with running_fake_forge() as forge:
        async with GitHubClient(forge.url, "acme/shop", "ghp_wrong_token_value") as client:
            with pytest.raises(PermissionDeniedError) as github:
                await client.find_open("x")
        async with GitLabClient(f"{forge.url}/api/v4", "acme/shop", "glpat-wrong-value") as client:
            with pytest.raises(PermissionDeniedError) as gitlab:
                await client.create(branch="x", base="main", title="t", body="b")
    assert "Bad credentials" in github.value.message
    assert "ghp_wrong_token_value" not in github.value.message
    assert "glpat-wrong-value" not in gitlab.value.message
    assert spec_for(github.value).http_status == 403


async def test_forge_refusals_and_missing_things_are_typed():
    async with running_fake_forge() as forge:
        async with GitHubClient(forge.url, "acme/shop", GITHUB_TOKEN) as client:
            await client.create(branch="b", base="main", title="t", body="")
            with pytest.raises(InvalidInputError, match="Validation Failed"):
                await client.create(branch="b", base="main", title="t", body="")
            with pytest.raises(NotFoundError):
                await client.get(99)
        async with GitLabClient(f"{forge.url}/api/v4", "acme/shop", GITLAB_TOKEN) as client:
            await client.create(branch="b", base="main", title="t", body="")
            with pytest.raises(CIError, match="409"):  # a conflict may clear up: worth a retry
                await client.create(branch="b", base="main", title="t", body="")


async def test_an_unreachable_forge_is_a_retryable_ci_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with GitHubClient(f"http://127.0.0.1:{port}", "acme/shop", GITHUB_TOKEN, timeout=5) as client:
        with pytest.raises(CIError) as raised:
            await client.find_open("x")
    assert GITHUB_TOKEN not in raised.value.message


async def test_github_merges_only_at_the_given_head_and_refusals_are_answers():
    async with (
        running_fake_forge(head_sha=lambda branch: "a" * 40) as forge,
        GitHubClient(forge.url, "acme/shop", GITHUB_TOKEN) as client,
    ):
        for number, branch in ((1, "moved"), (2, "conflict"), (3, "checks"), (4, "fine")):
            assert (await client.create(branch=branch, base="main", title=branch, body="")).number == number
        moved = await client.merge(1, "b" * 40)
        forge.conflicts.add(("acme/shop", 2))
        conflict = await client.merge(2, "a" * 40)
        forge.required_checks = ("build",)
        checks = await client.merge(3, "a" * 40)
        forge.required_checks = ()
        merged = await client.merge(4, "a" * 40)
        assert (await client.get(4)).merged
        again = await client.merge(4, "a" * 40)

    assert moved == MergeAnswer(False, "HTTP 409: Head branch was modified. Review and try the merge again.")
    assert conflict == MergeAnswer(False, "HTTP 405: Pull Request is not mergeable")
    assert checks == MergeAnswer(False, 'HTTP 405: Required status check "build" is expected.')
    assert merged == MergeAnswer(True)
    assert again == MergeAnswer(False, "HTTP 405: Pull Request is not mergeable")
    puts = forge.calls("PUT")
    assert [(c.path, c.body) for c in puts][-2] == ("/repos/acme/shop/pulls/4/merge", {"sha": "a" * 40})


async def test_gitlab_merges_only_at_the_given_head_and_refusals_are_answers():
    async with (
        running_fake_forge(head_sha=lambda branch: "c" * 40) as forge,
        GitLabClient(f"{forge.url}/api/v4", "acme/sub/shop", GITLAB_TOKEN) as client,
    ):
        for branch in ("moved", "conflict", "pipeline", "fine"):
            await client.create(branch=branch, base="main", title=branch, body="")
        moved = await client.merge(1, "d" * 40)
        forge.conflicts.add(("acme/sub/shop", 2))
        conflict = await client.merge(2, "c" * 40)
        forge.required_checks = ("pipeline",)
        pipeline = await client.merge(3, "c" * 40)
        forge.required_checks = ()
        merged = await client.merge(4, "c" * 40)
        assert (await client.get(4)).merged

    assert moved == MergeAnswer(False, f"HTTP 409: SHA does not match HEAD of source branch: {'c' * 40}")
    assert conflict == MergeAnswer(False, "HTTP 406: Branch cannot be merged")
    assert pipeline == MergeAnswer(False, "HTTP 405: 405 Method Not Allowed")
    assert merged == MergeAnswer(True)
    last = forge.calls("PUT")[-1]
    assert (last.path, last.body) == (
        "/api/v4/projects/acme%2Fsub%2Fshop/merge_requests/4/merge",
        {"sha": "c" * 40},
    )


async def test_a_merge_with_a_refused_token_is_an_error_not_a_refusal():
    async with running_fake_forge() as forge, GitHubClient(forge.url, "acme/shop", "ghp_wrong") as client:
        with pytest.raises(PermissionDeniedError):
            await client.merge(1, "a" * 40)
