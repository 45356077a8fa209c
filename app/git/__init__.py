"""Git as a subprocess, hardened: clone, worktrees, commits, pushes, remote branches.

Nothing here runs a shell; every failure is an `app.errors.GitError` (credentials masked), every
outside value is checked first (`InvalidInputError`), and a repository whose own config names a
program for git is refused (`UnsafeRepositoryError`). Services build one `GitRepository` per path.
"""

from app.domain.refnames import branch_name_problem, check_branch_name
from app.git.config_guard import check_local_repository, check_repository
from app.git.credentials import GitCredential, split_credentials
from app.git.parsing import DiffStats, FileStat, Worktree
from app.git.redact import mask_credentials
from app.git.repository import GitRepository
from app.git.runner import GitResult, GitRunner, default_base_env, git_environment
from app.git.validation import check_remote_name, check_remote_url, check_revision

__all__ = [
    "DiffStats",
    "FileStat",
    "GitCredential",
    "GitRepository",
    "GitResult",
    "GitRunner",
    "Worktree",
    "branch_name_problem",
    "check_branch_name",
    "check_local_repository",
    "check_remote_name",
    "check_remote_url",
    "check_repository",
    "check_revision",
    "default_base_env",
    "git_environment",
    "mask_credentials",
    "split_credentials",
]
