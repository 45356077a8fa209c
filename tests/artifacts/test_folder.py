"""The protocol folder writer on a real file system, including a hostile worktree."""

from __future__ import annotations

import os

import pytest

from app.artifacts.folder import ProtocolFolder
from app.domain.plan import accept_plan
from app.errors import ConflictError, InvalidInputError, NotFoundError

PLAN = accept_plan(
    {
        "plan_md": "# Plan\n",
        "context_md": "# Context\n",
        "log_md": "# Log\n",
        "step_files": [
            {"filename": "01-first.md", "content": "# First\n"},
            {"filename": "02-second.md", "content": "# Second\n"},
        ],
    }
)


@pytest.fixture
def worktree(tmp_path):
    path = tmp_path / "worktree"
    path.mkdir()
    return path


def test_a_plan_is_written_whole(worktree):
    folder = ProtocolFolder(worktree, "0001-demo")
    written = folder.write_plan(PLAN)
    assert written == [
        ".protocols/0001-demo/plan.md",
        ".protocols/0001-demo/context.md",
        ".protocols/0001-demo/log.md",
        ".protocols/0001-demo/01-first.md",
        ".protocols/0001-demo/02-second.md",
    ]
    assert (worktree / ".protocols/0001-demo/02-second.md").read_text() == "# Second\n"
    assert folder.list() == ["01-first.md", "02-second.md", "context.md", "log.md", "plan.md"]
    assert [p.name for p in (worktree / ".protocols").iterdir()] == ["0001-demo"]


def test_a_second_plan_needs_replace_and_then_replaces_everything(worktree):
    folder = ProtocolFolder(worktree, "0001-demo")
    folder.write_plan(PLAN)
    folder.write("qa/01-attempt-1.md", "# QA\n")
    with pytest.raises(ConflictError):
        folder.write_plan(PLAN)
    shorter = accept_plan(
        {
            "plan_md": "# New\n",
            "context_md": "# C\n",
            "log_md": "# L\n",
            "step_files": [{"filename": "01-only.md", "content": "# Only\n"}],
        }
    )
    folder.write_plan(shorter, replace=True)
    assert folder.list() == ["01-only.md", "context.md", "log.md", "plan.md"]
    assert sorted(p.name for p in (worktree / ".protocols").iterdir()) == ["0001-demo"]


def test_a_failed_write_leaves_nothing_behind(worktree, monkeypatch):
    folder = ProtocolFolder(worktree, "0001-demo")
    calls = []

    def failing_rename(src, dst):
        calls.append(dst)
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="disk full"):
        folder.write_plan(PLAN)
    monkeypatch.undo()
    assert calls
    assert list((worktree / ".protocols").iterdir()) == []


def test_a_planted_symlink_is_never_followed(worktree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (worktree / ".protocols").mkdir()
    os.symlink(outside, worktree / ".protocols" / "0001-demo")
    folder = ProtocolFolder(worktree, "0001-demo")
    with pytest.raises(ConflictError):
        folder.write_plan(PLAN)
    with pytest.raises(InvalidInputError):
        folder.write_plan(PLAN, replace=True)
    with pytest.raises(InvalidInputError):
        folder.write("qa/01-attempt-1.md", "x")
    assert list(outside.iterdir()) == []


def test_protocols_dir_itself_as_a_symlink_is_refused(worktree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, worktree / ".protocols")
    with pytest.raises(InvalidInputError):
        ProtocolFolder(worktree, "0001-demo").write_plan(PLAN)
    assert list(outside.iterdir()) == []


def test_artifacts_are_written_and_read_safely(worktree, tmp_path):
    folder = ProtocolFolder(worktree, "0001-demo")
    folder.write_plan(PLAN)
    assert folder.write("qa/01-attempt-1.md", "# QA 1\n") == ".protocols/0001-demo/qa/01-attempt-1.md"
    assert folder.read("qa/01-attempt-1.md") == "# QA 1\n"
    assert folder.read("plan.md") == "# Plan\n"
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, worktree / ".protocols/0001-demo/qa/02-attempt-1.md")
    with pytest.raises(InvalidInputError):
        folder.read("qa/02-attempt-1.md")
    folder.write("qa/02-attempt-1.md", "# replaced the link\n")
    assert secret.read_text() == "top secret"
    assert not (worktree / ".protocols/0001-demo/qa/02-attempt-1.md").is_symlink()
    with pytest.raises(NotFoundError):
        folder.read("qa/09-attempt-1.md")
    for bad in ("../../../etc/passwd", "/etc/passwd", "01-first.md", "plan.md"):
        with pytest.raises(InvalidInputError):
            folder.write(bad, "x")
    with pytest.raises(InvalidInputError):
        folder.read("../../secret.txt")


def test_reading_is_capped(worktree):
    folder = ProtocolFolder(worktree, "0001-demo")
    folder.write_plan(PLAN)
    folder.write("logs/01-execution-1.jsonl", "x" * 2000)
    with pytest.raises(InvalidInputError, match="larger than 1000 bytes"):
        folder.read("logs/01-execution-1.jsonl", max_bytes=1000)
