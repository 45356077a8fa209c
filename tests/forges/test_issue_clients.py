"""The forge clients' issue calls against the fake forge: list the labelled open issues (every page,
pull requests left out) and comment on one, at each forge's real paths."""

from __future__ import annotations

import pytest

from app.forges.client import ISSUE_PAGE
from app.forges.github_client import GitHubClient
from app.forges.gitlab_client import GitLabClient
from tests.support.fake_forge import GITHUB_TOKEN, GITLAB_TOKEN, running_fake_forge


@pytest.mark.parametrize("provider", ["github", "gitlab"])
async def test_labelled_open_issues_are_listed_page_by_page_and_commented(provider):
    async with running_fake_forge() as forge:
        for number in range(1, ISSUE_PAGE + 3):
            forge.add_issue(provider, "acme/shop", number, title=f"Issue {number}", labels=("agent",))
        forge.add_issue(provider, "acme/shop", 500, labels=("bug",))
        forge.add_issue(provider, "acme/shop", 501, labels=("agent",), open=False)
        if provider == "github":  # GitHub lists pull requests among issues
            forge.issues[("acme/shop", 1)]["pull_request"] = {"url": "https://api.github.com/…/pulls/1"}
            client: GitHubClient | GitLabClient = GitHubClient(forge.url, "acme/shop", GITHUB_TOKEN)
        else:
            client = GitLabClient(f"{forge.url}/api/v4", "acme/shop", GITLAB_TOKEN)
        async with client:
            issues, complete = await client.labelled_issues("agent")
            await client.comment_issue(2, "taken in")

    first = 2 if provider == "github" else 1
    assert complete
    assert [i.number for i in issues] == list(range(first, ISSUE_PAGE + 3))
    assert {(i.repository, i.open, i.labels) for i in issues} == {("acme/shop", True, ("agent",))}
    assert issues[-1].title == f"Issue {ISSUE_PAGE + 2}"
    pages = [c for c in forge.calls("GET")]
    assert [c.query["page"] for c in pages] == ["1", "2"]
    if provider == "github":
        assert pages[0].path == "/repos/acme/shop/issues"
        assert pages[0].query == {"labels": "agent", "state": "open", "per_page": "100", "page": "1"}
        assert forge.calls("POST")[0].path == "/repos/acme/shop/issues/2/comments"
    else:
        assert pages[0].path == "/api/v4/projects/acme%2Fshop/issues"
        assert pages[0].query == {"labels": "agent", "state": "opened", "per_page": "100", "page": "1"}
        assert forge.calls("POST")[0].path == "/api/v4/projects/acme%2Fshop/issues/2/notes"
    assert forge.calls("POST")[0].body == {"body": "taken in"}
    assert forge.issue_comments[("acme/shop", 2)] == ["taken in"]
