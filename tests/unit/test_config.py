from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.config import (
    EngineName,
    LogFormat,
    Settings,
    load_settings,
)
from app.config_display import mask_url, masked_settings, settings_reference
from app.config_environment import agent_environment
from app.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_need_no_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.database_url is None
    assert settings.embedded_pgdata == tmp_path / "postgres"
    assert settings.resolved_projects_root == tmp_path / "projects"
    assert settings.planning_engine is EngineName.CODEX
    assert settings.log_format is LogFormat.CONSOLE


def test_environment_is_read_with_the_prefix(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_PORT", "9999")
    monkeypatch.setenv("TASKSGODZILLA_AUTO_QA_ON_CI", "true")
    monkeypatch.setenv("TASKSGODZILLA_QA_ENGINE", "claude")
    monkeypatch.setenv("TASKSGODZILLA_PROJECTS_ROOT", "/srv/projects")
    monkeypatch.setenv("TASKSGODZILLA_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.port == 9999
    assert settings.auto_qa_on_ci is True
    assert settings.qa_engine is EngineName.CLAUDE
    assert settings.resolved_projects_root == Path("/srv/projects")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("TASKSGODZILLA_PORT", "eighty", "TASKSGODZILLA_PORT: Input should be a valid integer"),
        ("TASKSGODZILLA_PORT", "70000", "TASKSGODZILLA_PORT: Input should be less than or equal to 65535"),
        ("TASKSGODZILLA_LOG_FORMAT", "xml", "TASKSGODZILLA_LOG_FORMAT: Input should be 'json' or 'console'"),
        (
            "TASKSGODZILLA_DATABASE_URL",
            "mysql://u@h/db",
            "TASKSGODZILLA_DATABASE_URL: must be a PostgreSQL URL",
        ),
        ("TASKSGODZILLA_EXECUTION_ENGINE", "gpt", "TASKSGODZILLA_EXECUTION_ENGINE: Input should be"),
        ("TASKSGODZILLA_LOG_LEVEL", "loud", "TASKSGODZILLA_LOG_LEVEL: must be one of"),
        ("TASKSGODZILLA_RETRY_BACKOFF_MAX_SECONDS", "1", "RETRY_BACKOFF_MAX_SECONDS must be at least"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_variable(monkeypatch, variable, value, complaint):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert complaint in raised.value.message
    assert "\n" not in raised.value.message


def test_a_bad_secret_is_not_echoed(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_DATABASE_URL", "mysql://user:hunter22@db/x")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "hunter22" not in raised.value.message


def test_masking_hides_every_secret():
    settings = Settings(
        api_token="tok-1234567890abcdef",
        github_token="ghp_abcdef",
        database_url="postgresql://app:s3cr%40t@db:5432/tg",
    )
    shown = masked_settings(settings)
    text = json.dumps(shown)
    assert "tok-1234567890abcdef" not in text
    assert "ghp_abcdef" not in text
    assert "s3cr" not in text
    assert shown["TASKSGODZILLA_API_TOKEN"] == "********"
    assert shown["TASKSGODZILLA_DATABASE_URL"] == "postgresql://app:********@db:5432/tg"
    assert shown["TASKSGODZILLA_WEBHOOK_TOKEN"] == ""
    assert set(shown) == {f"TASKSGODZILLA_{f.upper()}" for f in Settings.model_fields}


def test_mask_url_leaves_passwordless_urls_alone():
    assert mask_url("postgresql://app@db/tg") == "postgresql://app@db/tg"


def test_config_command_prints_masked_settings(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_API_TOKEN", "very-secret-token")
    result = CliRunner().invoke(cli, ["config", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown["TASKSGODZILLA_API_TOKEN"] == "********"
    assert "very-secret-token" not in result.output


def test_config_command_fails_cleanly_on_an_invalid_value(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_DB_POOL_SIZE", "lots")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 78
    assert result.output.strip().startswith("error: invalid setting TASKSGODZILLA_DB_POOL_SIZE")
    assert "Traceback" not in result.output


def test_the_readme_carries_the_current_settings_reference():
    """Regenerate with `tasksgodzilla config --reference` when a setting changes."""
    assert settings_reference() in README.read_text()


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"`(TASKSGODZILLA_[A-Z0-9_]+)`", README.read_text()))
    missing = {f"TASKSGODZILLA_{f.upper()}" for f in Settings.model_fields} - documented
    assert missing == set()


def test_list_and_table_settings_parse_from_the_environment(monkeypatch):
    monkeypatch.setenv("TASKSGODZILLA_AGENT_ENV_PASSTHROUGH", "PATH, HOME,TASKSGODZILLA_API_TOKEN")
    monkeypatch.setenv("TASKSGODZILLA_MODEL_PRICES", '{"m": {"input": 1, "output": 2.5}}')
    settings = load_settings()
    assert settings.agent_env_passthrough == ["PATH", "HOME", "TASKSGODZILLA_API_TOKEN"]
    assert str(settings.model_prices["m"].output) == "2.5"
    inherited = agent_environment(settings, {"PATH": "/bin", "TASKSGODZILLA_API_TOKEN": "x", "SECRET": "y"})
    assert inherited == {"PATH": "/bin"}


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        (
            "TASKSGODZILLA_MODEL_PRICES",
            '{"m": {"inp": 1}}',
            "TASKSGODZILLA_MODEL_PRICES (m.input): Field required",
        ),
        ("TASKSGODZILLA_BRANCH_PATTERN", "fixed", "must contain {name}, or {number} and {slug}"),
        (
            "TASKSGODZILLA_BRANCH_PATTERN",
            "{user}-{name}",
            "only {name}, {number}, {slug} and {project} may appear",
        ),
    ],
)
def test_structured_settings_name_what_is_wrong(monkeypatch, variable, value, complaint):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert complaint in raised.value.message


@pytest.mark.parametrize(
    "variable",
    [
        "TASKSGODZILLA_API_TOKEN",
        "TASKSGODZILLA_SESSION_SECRET",
        "TASKSGODZILLA_WEBHOOK_TOKEN",
        "TASKSGODZILLA_GITHUB_WEBHOOK_SECRET",
        "TASKSGODZILLA_GITLAB_WEBHOOK_TOKEN",
    ],
)
@pytest.mark.parametrize("value", ["", "short-secret"])
def test_an_empty_or_short_shared_secret_is_refused_not_taken_as_unset(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}: must be at least 16 characters"):
        load_settings()
    monkeypatch.setenv(variable, "x" * 16)
    assert (
        getattr(load_settings(), variable.removeprefix("TASKSGODZILLA_").lower()).get_secret_value()
        == "x" * 16
    )


def test_every_setting_is_read_by_the_service():
    """A setting nothing reads is a promise nothing keeps: each one is read outside its own module
    (as `settings.<name>`, or by the `<stage>_engine` / `<stage>_model` lookups of engine choice)."""
    import re
    from pathlib import Path

    from app.config import Settings

    app = Path(__file__).resolve().parents[2] / "app"
    sources = "\n".join(
        p.read_text() for p in app.rglob("*.py") if p.name not in ("config.py", "config_display.py")
    )
    config = (app / "config.py").read_text()
    derived = config[config.index("    @property") :]  # the properties and helpers below the fields
    by_stage = re.search(r'getattr\(settings, f"\{prefix\}_engine"\)', sources) is not None
    unread = []
    for name in Settings.model_fields:
        if re.search(rf"\.{name}\b", sources) or re.search(rf"\.{name}\b", derived):
            continue
        if by_stage and re.fullmatch(r"(planning|execution|qa|discovery)_(engine|model)", name):
            continue
        unread.append(name)
    assert unread == []


def test_config_prints_each_list_so_it_reads_back_the_same(monkeypatch):
    """A JSON list's items may hold commas: printed joined by commas, they would read back split."""
    settings = Settings(
        codex_config=['model_reasoning_effort="high"', "sandbox_permissions=[a,b]"],
        agent_env_passthrough=["PATH", "HOME"],
    )
    shown = masked_settings(settings)
    for variable in ("TASKSGODZILLA_CODEX_CONFIG", "TASKSGODZILLA_AGENT_ENV_PASSTHROUGH"):
        monkeypatch.setenv(variable, shown[variable])
    read_back = load_settings()
    assert read_back.codex_config == settings.codex_config
    assert read_back.agent_env_passthrough == ["PATH", "HOME"]
