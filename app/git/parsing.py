"""Reading git's machine formats (`-z`, porcelain): NUL-separated, so any file name survives."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileStat:
    """One file of a diff: lines added and removed (0 and 0 for binary files)."""

    path: str
    insertions: int
    deletions: int
    binary: bool = False
    old_path: str | None = None  # set when git saw a rename


@dataclass(frozen=True)
class DiffStats:
    """What changed between two commits."""

    files: tuple[FileStat, ...] = field(default_factory=tuple)
    insertions: int = 0
    deletions: int = 0

    @property
    def paths(self) -> list[str]:
        return [stat.path for stat in self.files]


@dataclass(frozen=True)
class Worktree:
    """One entry of `git worktree list`."""

    path: str
    head: str | None
    branch: str | None  # `refs/heads/...`; None when detached
    prunable: bool


def parse_numstat(data: bytes) -> DiffStats:
    """`git diff --numstat -z`: `added TAB deleted TAB path NUL`; a rename: `... TAB NUL old NUL new NUL`."""
    fields = data.split(b"\0")
    files: list[FileStat] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if not entry:
            continue
        added, deleted, path = entry.split(b"\t", 2)
        old_path = None
        if not path:
            old_path, path = os.fsdecode(fields[i]), fields[i + 1]
            i += 2
        binary = added == b"-"
        files.append(
            FileStat(
                path=os.fsdecode(path),
                insertions=0 if binary else int(added),
                deletions=0 if binary else int(deleted),
                binary=binary,
                old_path=old_path,
            )
        )
    return DiffStats(
        files=tuple(files),
        insertions=sum(f.insertions for f in files),
        deletions=sum(f.deletions for f in files),
    )


def parse_status_paths(data: bytes) -> list[str]:
    """Paths of `git status --porcelain=v1 -z`: `XY path NUL`, renames followed by `orig NUL`."""
    fields = data.split(b"\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        paths.append(os.fsdecode(path))
        if b"R" in status or b"C" in status:
            i += 1  # the original path of a rename or copy follows
    return sorted(set(paths))


def parse_worktrees(data: bytes) -> list[Worktree]:
    """`git worktree list --porcelain -z`: attribute lines NUL-separated, entries by an empty field."""
    worktrees: list[Worktree] = []
    current: dict[str, str] = {}
    for raw in [*data.split(b"\0"), b""]:
        if not raw:
            if "worktree" in current:
                worktrees.append(
                    Worktree(
                        path=current["worktree"],
                        head=current.get("HEAD"),
                        branch=current.get("branch"),
                        prunable="prunable" in current,
                    )
                )
            current = {}
            continue
        key, _, value = os.fsdecode(raw).partition(" ")
        current[key] = value
    return worktrees


def parse_ls_remote_refs(text: str) -> list[str]:
    """Ref names of `git ls-remote`: `sha TAB ref` lines."""
    return [line.partition("\t")[2] for line in text.splitlines() if "\t" in line]


def parse_ls_remote_heads(text: str) -> list[str]:
    """Branch names of `git ls-remote --heads`."""
    refs = parse_ls_remote_refs(text)
    return sorted(ref.removeprefix("refs/heads/") for ref in refs if ref.startswith("refs/heads/"))


def parse_log_subjects(data: bytes) -> list[tuple[str, str]]:
    """(sha, subject) pairs of `git log -z --format=%H%x09%s`."""
    pairs = []
    for record in data.split(b"\0"):
        sha, tab, subject = record.decode("utf-8", errors="replace").strip("\n").partition("\t")
        if tab:
            pairs.append((sha, subject))
    return pairs


def push_was_rejected(porcelain: bytes | str) -> bool:
    """Whether `git push --porcelain` says the remote refused a ref because it is not a fast-forward
    (`!` flag, `[rejected]` summary); a hook's refusal (`[remote rejected]`) or a network error is not."""
    text = porcelain.decode("utf-8", "replace") if isinstance(porcelain, bytes) else porcelain
    for line in text.splitlines():
        flag, _, rest = line.partition("\t")
        if flag == "!" and "\t[rejected]" in rest:
            return True
    return False


@dataclass(frozen=True)
class TreeEntry:
    """One entry of `git ls-tree -l -z`: mode (`120000` is a symlink), kind, object, size, path."""

    mode: str
    kind: str
    sha: str
    size: int | None  # None for what is not a blob
    path: str


def parse_ls_tree_long(out: bytes) -> list[TreeEntry]:
    """Entries of `git ls-tree -l -z`: `<mode> SP <type> SP <object> SP+ <size> TAB <path> NUL`."""
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode("ascii").split()
        entries.append(TreeEntry(mode, kind, sha, int(size) if size.isdigit() else None, os.fsdecode(path)))
    return entries


@dataclass(frozen=True)
class WorktreeState:
    """`git status --porcelain=v2 --branch`: the commit HEAD is on (None before the first commit) and
    whether anything is uncommitted (staged, modified, unmerged or untracked)."""

    head: str | None
    clean: bool


def parse_status_v2(data: bytes) -> WorktreeState:
    """`git status --porcelain=v2 --branch -z`: `# branch.oid <sha>` among the headers; any record that
    is not a header is a change."""
    head: str | None = None
    clean = True
    for record in data.split(b"\0"):
        if record.startswith(b"# branch.oid "):
            oid = record[len(b"# branch.oid ") :].decode("ascii", "replace")
            head = None if oid == "(initial)" else oid
        elif record and not record.startswith(b"# "):
            clean = False
    return WorktreeState(head, clean)


def bundle_refs(data: bytes) -> dict[str, str]:
    """The refs (name → sha) a git bundle's header lists (v2 and v3 headers; prerequisites and
    capabilities skipped); empty when `data` is not a bundle."""
    header, _, _ = data.partition(b"\n\n")
    lines = header.split(b"\n")
    if not lines or not lines[0].startswith(b"# v") or not lines[0].endswith(b" git bundle"):
        return {}
    refs = {}
    for line in lines[1:]:
        if line.startswith((b"-", b"@")) or b" " not in line:
            continue
        sha, name = line.split(b" ", 1)
        refs[name.decode("utf-8", "replace")] = sha.decode("ascii", "replace")
    return refs


# `git commit`'s summary line: `[<branch>[ (root-commit)] <sha>] <subject>` (a branch name has no
# space; a detached HEAD reads `detached HEAD`). Anchored at the start, so a subject cannot fake it.
_COMMIT_SUMMARY = re.compile(rb"\[(?:detached HEAD|[^\s\]]\S*)(?: \(root-commit\))? ([0-9a-f]{40})\] ")


def committed_sha(stdout: bytes) -> str | None:
    """The full sha `git commit -c core.abbrev=40` printed for the commit it made; None if unread."""
    found = _COMMIT_SUMMARY.match(stdout)
    return found.group(1).decode("ascii") if found else None
