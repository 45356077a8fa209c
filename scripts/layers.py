#!/usr/bin/env python3
"""Check the layering of docs/DESIGN.md against the code: which layer imports which.

Run from the repository root:  python3 scripts/layers.py   (exit 1 when something breaks a rule)

It reads imports with `ast` (nothing is executed) and reports:
  - an import that crosses a layer boundary the design forbids;
  - I/O libraries or environment reads inside app/domain/ (the pure layer);
  - modules longer than 400 lines (a hint to split, not a rule).
Imports inside `if TYPE_CHECKING:` blocks are ignored.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

# Layer of a module, by the first matching prefix of its dotted name.
LAYERS = [
    ("app.domain", "domain"),
    ("app.store", "store"),
    ("app.db", "store"),
    ("app.engines", "engines"),
    ("app.git", "git"),
    ("app.forges", "forges"),
    ("app.notify", "notify"),
    ("app.services", "services"),
    ("app.jobs", "jobs"),
    ("app.web", "web"),
    ("app.config", "config"),
    ("app.settings", "config"),
    ("app.cli", "cli"),
    ("app.__main__", "cli"),
]

# (from, to): why that import must not exist.
NEVER = {
    ("domain", "store"): "the domain does no I/O",
    ("domain", "engines"): "the domain does no I/O",
    ("domain", "git"): "the domain does no I/O",
    ("domain", "forges"): "the domain does no I/O",
    ("domain", "services"): "rules know no use cases",
    ("domain", "jobs"): "the domain does no I/O",
    ("domain", "web"): "the domain does no I/O",
    ("domain", "cli"): "the domain does no I/O",
    ("store", "services"): "storage knows no use cases",
    ("store", "jobs"): "storage knows no queue",
    ("store", "web"): "storage knows no HTTP",
    ("engines", "store"): "adapters return results; services record them",
    ("git", "store"): "adapters return results; services record them",
    ("forges", "store"): "adapters return results; services record them",
    ("engines", "services"): "adapters know no use cases",
    ("git", "services"): "adapters know no use cases",
    ("forges", "services"): "adapters know no use cases",
    ("notify", "store"): "adapters return results; services record them",
    ("notify", "services"): "adapters know no use cases",
    ("domain", "notify"): "the domain does no I/O",
    ("services", "web"): "use cases know no HTTP",
    ("services", "cli"): "use cases know no command line",
    ("jobs", "web"): "workers run without the web app",
}

DOMAIN_FORBIDDEN = {
    "sqlalchemy",
    "asyncpg",
    "psycopg",
    "procrastinate",
    "aiohttp",
    "asyncio",
    "subprocess",
    "socket",
    "requests",
    "httpx",
    "jinja2",
    "aiohttp_jinja2",
}

MAX_LINES = 400


def layer_of(module: str) -> str | None:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
            if name == "TYPE_CHECKING":
                for child in node.body:
                    for sub in ast.walk(child):
                        if hasattr(sub, "lineno"):
                            lines.add(sub.lineno)
    return lines


def imports_of(tree: ast.AST, current: str, is_package: bool) -> Iterator[tuple[int, str]]:
    skip = type_checking_lines(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node, current, is_package)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name


def reads_environment(tree: ast.AST) -> list[int]:
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"environ", "getenv"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(node.lineno)
    return found


def main() -> int:
    root = Path.cwd()
    app = root / "app"
    if not app.is_dir():
        print("no app/ folder here: run from the repository root")
        return 0
    problems: list[str] = []
    long_modules: list[str] = []
    for path in sorted(app.rglob("*.py")):
        rel = path.relative_to(root)
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = text.count("\n") + 1
        if lines > MAX_LINES:
            long_modules.append(f"  {rel}: {lines} lines")
        try:
            tree = ast.parse(text, filename=str(rel))
        except SyntaxError as exc:
            problems.append(f"  {rel}: does not parse ({exc.msg}, line {exc.lineno})")
            continue
        current = module_name(path, root)
        mine = layer_of(current)
        seen: set[tuple[int, str]] = set()
        for lineno, target in imports_of(tree, current, path.name == "__init__.py"):
            if mine == "domain" and target.split(".")[0] in DOMAIN_FORBIDDEN:
                key = (lineno, target.split(".")[0])
                if key not in seen:
                    seen.add(key)
                    problems.append(f"  {rel}:{lineno}: the pure domain imports {target.split('.')[0]}")
                continue
            theirs = layer_of(target)
            why = NEVER.get((mine, theirs)) if mine and theirs and mine != theirs else None
            if why and (lineno, theirs) not in seen:
                seen.add((lineno, theirs))
                problems.append(f"  {rel}:{lineno}: {mine} imports {target} ({theirs}): {why}")
        if mine == "domain":
            for lineno in reads_environment(tree):
                problems.append(f"  {rel}:{lineno}: the pure domain reads the environment")
    if problems:
        print("Layering (see docs/DESIGN.md, 'Layers'):")
        print("\n".join(problems))
    if long_modules:
        print(f"Modules over {MAX_LINES} lines (consider splitting by responsibility):")
        print("\n".join(long_modules))
    if not problems and not long_modules:
        print("layers: every import follows the design")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
