"""app/domain is pure: it (and what it imports from app) uses no I/O library and reads no environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
FORBIDDEN = {
    "sqlalchemy",
    "aiohttp",
    "asyncio",
    "subprocess",
    "asyncpg",
    "psycopg",
    "procrastinate",
    "socket",
}


def violations(source: str) -> list[str]:
    """Forbidden imports and environment reads in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in FORBIDDEN:
                found.append(f"imports {node.module}")
            if node.module == "os" and {a.name for a in node.names} & {"environ", "getenv", "environb"}:
                found.append("reads the environment")
        elif isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
            found.append("reads the environment")
    return found


def app_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("app")}
    return names


def module_path(name: str) -> Path:
    base = APP.parent.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def test_the_checker_catches_what_it_is_meant_to():
    assert violations("import asyncio") == ["imports asyncio"]
    assert violations("from sqlalchemy import select") == ["imports sqlalchemy"]
    assert violations("import os\nx = os.environ['A']") == ["reads the environment"]
    assert violations("from os import getenv") == ["reads the environment"]
    assert violations("import re\nfrom pathlib import PurePosixPath") == []


def domain_modules() -> list[Path]:
    return sorted((APP / "domain").rglob("*.py"))


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: p.name)
def test_domain_module_and_what_it_imports_are_pure(path):
    pending, checked, problems = [path], set(), []
    while pending:
        current = pending.pop()
        if current in checked:
            continue
        checked.add(current)
        source = current.read_text()
        problems += [f"{current.relative_to(APP.parent)}: {v}" for v in violations(source)]
        pending += [module_path(name) for name in app_imports(source) if module_path(name).exists()]
    assert problems == []
