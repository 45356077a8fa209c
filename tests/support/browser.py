"""Debian's Chromium for the console's browser tests: installed with apt-get when missing (as root).

Playwright drives it through `executable_path`; no browser is ever downloaded by Playwright itself.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LOCK = Path(__file__).resolve().parents[2] / ".cache" / "chromium.lock"


def install_chromium() -> Path:
    """The Chromium binary, installing Debian's package when it is missing and we may."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail(
            "the console's browser tests need Debian's Chromium: run `apt-get install -y chromium` as root"
        )
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test sessions and their workers install once, in turn
        if not CHROMIUM.exists():
            _apt_install(apt)
    if not CHROMIUM.exists():
        pytest.fail("apt-get installed chromium, yet /usr/bin/chromium is missing")
    return CHROMIUM


def _apt_install(apt: str) -> None:
    install = [apt, "install", "-y", "-q", "chromium"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, capture_output=True, env=env, timeout=900, check=False).returncode != 0:
        subprocess.run([apt, "update", "-q"], capture_output=True, env=env, timeout=600, check=True)
        subprocess.run(install, capture_output=True, env=env, timeout=900, check=True)
