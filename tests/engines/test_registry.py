from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.domain.agents import AgentRequest
from app.domain.records import Stage
from app.engines.registry import build_engines, pick
from app.errors import ConfigError


def _request(stage: Stage) -> AgentRequest:
    return AgentRequest(stage=stage, prompt="do it", workdir=Path("/srv/work"), model="m")


def test_codex_and_claude_always_command_when_configured():
    engines = build_engines(Settings(), base_env={})
    assert sorted(engines) == ["claude", "codex"]
    with pytest.raises(ConfigError, match="TASKSGODZILLA_COMMAND_AGENT"):
        pick(engines, "command")
    configured = build_engines(
        Settings(command_agent=["./agent", "--fast"]),
        base_env={},
    )
    assert pick(configured, "command").name == "command"


def test_settings_reach_the_command_lines():
    settings = Settings(
        codex_bin="/opt/codex",
        codex_config=["model_provider=local"],
        claude_bin="/opt/claude",
        claude_allowed_tools="Bash(pytest:*), Bash(git diff:*)",
    )
    engines = build_engines(settings, base_env={"PATH": "/bin"})
    codex = engines["codex"].command(_request(Stage.EXECUTION))  # type: ignore[attr-defined]
    assert codex[0] == "/opt/codex"
    assert ["-c", "model_provider=local"] == codex[codex.index("-c") : codex.index("-c") + 2]
    assert codex[codex.index("-s") + 1] == "workspace-write"
    claude = engines["claude"].command(_request(Stage.EXECUTION))  # type: ignore[attr-defined]
    assert "--allowedTools=Bash(pytest:*),Bash(git diff:*)" in claude
    read_only = engines["claude"].command(_request(Stage.QA))  # type: ignore[attr-defined]
    assert "--permission-mode=plan" in read_only
    assert not any(arg.startswith("--allowedTools") for arg in read_only)


def test_each_engine_names_the_setting_that_chooses_its_executable():
    engines = build_engines(Settings(command_agent=["./agent"]), base_env={})
    fields = {f"TASKSGODZILLA_{name.upper()}" for name in Settings.model_fields}
    named = {name: engine.setting for name, engine in engines.items()}
    assert named == {
        "codex": "TASKSGODZILLA_CODEX_BIN",
        "claude": "TASKSGODZILLA_CLAUDE_BIN",
        "command": "TASKSGODZILLA_COMMAND_AGENT",
    }
    assert set(named.values()) <= fields
