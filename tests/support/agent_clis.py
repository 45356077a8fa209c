"""The real agent CLIs, pinned, installed from the npm registry into .cache/agents on first use."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest

CODEX_VERSION = "0.169.0"
CLAUDE_VERSION = "2.1.197"
PACKAGES = {"@openai/codex": CODEX_VERSION, "@anthropic-ai/claude-code": CLAUDE_VERSION}
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "agents"


def _installed_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        manifest = CACHE / "node_modules" / package / "package.json"
        if manifest.exists():
            versions[package] = json.loads(manifest.read_text())["version"]
    return versions


def install_agent_clis() -> Path:
    """The folder holding `codex` and `claude`, installing the pinned versions when missing."""
    bin_dir = CACHE / "node_modules" / ".bin"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions install once
        if _installed_versions() != PACKAGES:
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is needed to install the agent CLIs the tests run (apt-get install npm)")
            specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
            subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *specs],
                check=True,
                capture_output=True,
                timeout=600,
            )
    return bin_dir


@pytest.fixture(scope="session")
def agent_bin_dir() -> Path:
    return install_agent_clis()


@pytest.fixture(scope="session")
def codex_bin(agent_bin_dir: Path) -> str:
    return str(agent_bin_dir / "codex")


@pytest.fixture(scope="session")
def claude_bin(agent_bin_dir: Path) -> str:
    return str(agent_bin_dir / "claude")
