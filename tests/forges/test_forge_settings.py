"""Forge settings: per-project tokens before the service-wide ones, never shown or logged."""

from __future__ import annotations

import json

import pytest

from app.config import Settings, load_settings
from app.config_display import masked_settings
from app.domain.records import Project
from app.errors import ConfigError
from app.logs import SecretRedactor, secret_values
from app.services.forges import forge_token, has_forge
from tests.support.records import project as base_project


def project(**fields) -> Project:
    return base_project(**{"git_url": "https://github.com/acme/shop.git", "local_path": None, **fields})


def test_per_project_tokens_come_first_and_are_secret(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_FORGE_TOKENS", '{"shop": "ghp_project_token_1"}')
    monkeypatch.setenv("TASKSGODZILLA_GITHUB_TOKEN", "ghp_service_token_2")
    monkeypatch.setenv("TASKSGODZILLA_GITLAB_TOKEN", "glpat_service_token_3")
    settings = load_settings()
    assert forge_token(settings, project()) == "ghp_project_token_1"
    assert forge_token(settings, project(name="other")) == "ghp_service_token_2"
    assert forge_token(settings, project(name="other", ci_provider="gitlab")) == "glpat_service_token_3"
    shown = json.dumps(masked_settings(settings))
    assert "ghp_project_token_1" not in shown
    assert "ghp_service_token_2" not in shown
    assert "ghp_project_token_1" in secret_values(settings)
    line = SecretRedactor(secret_values(settings)).redact("Authorization: Bearer ghp_project_token_1")
    assert line == "Authorization: Bearer ********"


def test_a_project_has_a_forge_only_with_a_provider_a_repository_and_a_token():
    with_token = Settings(github_token="ghp_service_token_2")
    assert has_forge(with_token, project())
    assert has_forge(with_token, project(git_url=None, local_path="/srv/shop", forge_repo="acme/shop"))
    assert not has_forge(Settings(), project())  # no token
    assert not has_forge(with_token, project(ci_provider=None))
    assert not has_forge(with_token, project(git_url=None, local_path="/srv/shop"))  # no repository known
    assert not has_forge(with_token, project(ci_provider="gitlab"))  # a GitHub token is not a GitLab one


@pytest.mark.parametrize("url", ["ftp://api.github.com", "api.github.com", "https://"])
def test_api_urls_must_be_http(url):
    with pytest.raises(ConfigError, match="GITHUB_API_URL"):
        load_settings(github_api_url=url)


def test_api_urls_lose_their_trailing_slash():
    assert Settings(gitlab_api_url="https://gitlab.example.test/api/v4/").gitlab_api_url == (
        "https://gitlab.example.test/api/v4"
    )
