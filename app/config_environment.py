"""What child processes inherit from this one's environment: git's and agents' allow-lists, never
one of our own variables (which are removed once the settings are read)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from app.config import ENV_PREFIX, Settings

GIT_ENV = ("PATH", "HOME", "TMPDIR", "SSH_AUTH_SOCK", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
           "SSL_CERT_FILE", "SSL_CERT_DIR")  # fmt: skip


def inherited_environment(names: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The named variables of this process's environment (the one place that reads it), never ours."""
    source = os.environ if environ is None else environ
    return {
        name: source[name] for name in names if name in source and not name.upper().startswith(ENV_PREFIX)
    }


def agent_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables an agent process inherits: the allow-list only, and never one of ours."""
    return inherited_environment(settings.agent_env_passthrough, environ)


def forget_our_variables() -> list[str]:
    """Remove every TASKSGODZILLA_* variable from this process's environment once the settings are
    read, so that no child inherits one; the names removed (/proc keeps the values: app.cli.scrub)."""
    names = [name for name in os.environ if name.upper().startswith(ENV_PREFIX)]
    for name in names:
        del os.environ[name]
    return names
