"""Defaults of the settings that depend on who runs the service: its data dir and its home folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_data_dir() -> Path:
    """~/.local/share/tasksgodzilla; /var/lib/tasksgodzilla for a service run as root (not /root)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/tasksgodzilla")
    return platformdirs.user_data_path("tasksgodzilla")


def home_folder() -> list[Path]:
    """The home folder of the user the service runs as, the default local-path root; none when that
    is `/` or missing (a system user), so `/etc` or `/proc` can never be a project's folder by default."""
    try:
        home = Path.home().resolve()
    except (KeyError, RuntimeError):
        return []
    return [home] if home != Path("/") and home.is_dir() else []
