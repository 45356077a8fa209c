"""Engines by name, built from the settings once per process."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import EngineName, Settings
from app.engines.agent_user import AgentUser
from app.engines.base import Engine
from app.engines.claude import ClaudeEngine
from app.engines.codex import CodexEngine
from app.engines.command import CommandEngine
from app.errors import ConfigError


def build_engines(
    settings: Settings, *, base_env: Mapping[str, str], user: AgentUser | None = None
) -> dict[str, Engine]:
    """Every engine the settings make usable, keyed by name (`command` only when it is configured),
    each running its agents as `user` (None: as this process's own user)."""
    prices, cap = settings.model_prices, settings.agent_max_output_bytes
    engines: dict[str, Engine] = {
        EngineName.CODEX.value: CodexEngine(
            binary=settings.codex_bin,
            base_env=base_env,
            prices=prices,
            max_output_bytes=cap,
            user=user,
            bypass_sandbox=settings.agent_bypass_sandbox,
            config_overrides=settings.codex_config,
        ),
        EngineName.CLAUDE.value: ClaudeEngine(
            binary=settings.claude_bin,
            base_env=base_env,
            prices=prices,
            max_output_bytes=cap,
            user=user,
            permission_mode=settings.claude_permission_mode,
            bypass_sandbox=settings.agent_bypass_sandbox,
            allowed_tools=settings.claude_allowed_tools,
        ),
    }
    if settings.command_agent:
        engines[EngineName.COMMAND.value] = CommandEngine(
            argv=settings.command_agent,
            base_env=base_env,
            prices=prices,
            max_output_bytes=cap,
            user=user,
        )
    return engines


def pick(engines: Mapping[str, Engine], name: str) -> Engine:
    """The engine called `name`, or a ConfigError saying how to make it available."""
    try:
        return engines[name]
    except KeyError:
        hint = " (set TASKSGODZILLA_COMMAND_AGENT)" if name == EngineName.COMMAND.value else ""
        raise ConfigError(f"engine {name!r} is not available{hint}", field="engine") from None
