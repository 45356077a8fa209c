"""The protocol folder `.protocols/NNNN-slug/`: which names may live in it, and where each artifact goes.

Every name that reaches the file system passes `artifact_path`, which refuses anything that could
leave the folder: `..`, absolute paths, backslashes, NUL and control characters, hidden or reserved
names. (Symlinks are refused by the writer, which is the part that touches the disk.)
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from app.errors import InvalidInputError

PROTOCOLS_DIR = ".protocols"
PLAN_FILE = "plan.md"
CONTEXT_FILE = "context.md"
LOG_FILE = "log.md"
QA_DIR = "qa"
AGENT_LOG_DIR = "logs"

STEP_FILE = re.compile(r"(?P<index>\d{2})-(?P<slug>[a-z0-9][a-z0-9-]{0,60})\.md")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)
MAX_DEPTH = 3


def protocol_folder(protocol_name: str) -> PurePosixPath:
    """`.protocols/<protocol_name>`, relative to the worktree."""
    return PurePosixPath(PROTOCOLS_DIR) / _segment(protocol_name, field="protocol_name")


def artifact_path(name: str, *, field: str = "name") -> PurePosixPath:
    """A relative path inside a protocol folder, or InvalidInputError naming `field`."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError("an artifact name is required", field=field)
    if "\\" in name or name.startswith("/") or len(name) > 300:
        raise InvalidInputError(f"{name[:80]!r} is not a relative artifact path", field=field)
    parts = name.split("/")
    if len(parts) > MAX_DEPTH:
        raise InvalidInputError(f"{name[:80]!r} is nested too deep", field=field)
    return PurePosixPath(*(_segment(part, field=field) for part in parts))


def _segment(part: str, *, field: str) -> str:
    if not _SEGMENT.fullmatch(part) or ".." in part:
        raise InvalidInputError(f"{part[:80]!r} is not an allowed file or folder name", field=field)
    if part.split(".")[0].lower() in _RESERVED:
        raise InvalidInputError(f"{part!r} is a reserved name", field=field)
    return part


def step_file_name(index: int, slug: str) -> str:
    """`03-add-tests.md`."""
    name = f"{index:02d}-{slug}.md"
    if not 1 <= index <= 99 or not STEP_FILE.fullmatch(name):
        raise InvalidInputError(f"{name!r} is not a valid step file name", field="filename")
    return name


def step_index_of(filename: str) -> int | None:
    """The NN of `NN-slug.md`, or None when the name is not a step file."""
    match = STEP_FILE.fullmatch(filename)
    return int(match["index"]) if match else None


def qa_report_name(step_index: int, attempt: int) -> str:
    """`qa/03-attempt-2.md`: one report per QA run, so a retry never overwrites the last verdict."""
    return f"{QA_DIR}/{step_index:02d}-attempt-{attempt}.md"


def agent_log_name(step_index: int, stage: str, attempt: int) -> str:
    """`logs/03-execution-1.jsonl`: transcripts live apart from step files and never replace them."""
    return f"{AGENT_LOG_DIR}/{step_index:02d}-{_segment(stage, field='stage')}-{attempt}.jsonl"
