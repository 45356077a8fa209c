"""One git repository's plumbing: its settings, and running one checked git command in it.

Every git command checks the repository's config first (an agent may have rewritten it since); those
that talk to the remote check its URLs too, and they alone get the project's credential.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

from app.errors import InvalidInputError
from app.git.config_guard import check_remote, check_repository, remote_overrides
from app.git.credentials import CredentialSource, split_credentials
from app.git.locks import repository_lock
from app.git.remote_guard import RemoteGuard
from app.git.runner import GitResult, GitRunner


def _check_identity(value: str, field: str) -> str:
    if not value or any(ord(ch) < 0x20 or ch in "<>" for ch in value):
        raise InvalidInputError(f"commit {field} must be one line without '<' or '>'", field=field)
    return value


class RepositoryPlumbing:
    """The repository (or worktree) at `path`, with what every command in it needs; the operations
    are GitRepository's (app.git.repository)."""

    def __init__(
        self,
        path: Path,
        *,
        timeout: float,
        author_name: str,
        author_email: str,
        allow_local_remotes: bool = False,
        base_env: Mapping[str, str] | None = None,
        remote_url: str | None = None,
        credentials: CredentialSource | None = None,
        remote_guard: RemoteGuard | None = None,
    ) -> None:
        """`remote_url`, when the service knows it, is what `origin` must point at (credentials
        aside); `credentials` gives the remote's credential to the commands that talk to it."""
        self.path = Path(path).absolute()
        self.author_name = _check_identity(author_name, "author_name")
        self.author_email = _check_identity(author_email, "author_email")
        self.runner = GitRunner(timeout=timeout, allow_local_remotes=allow_local_remotes, base_env=base_env)
        self.remote_url = remote_url
        self._base_env = base_env
        self._credentials = credentials
        # Checks (and pins) the remote before every command that talks to it: see app.git.remote_guard.
        self.remote_guard = remote_guard or RemoteGuard(allow_local=allow_local_remotes)
        self._lock_key: Path | None = None  # the common dir, once found (see _locked)

    def sibling(self, path: Path) -> Self:
        """Another path of the same repository (a worktree), with the same settings."""
        return type(self)(
            path,
            timeout=self.runner.timeout,
            author_name=self.author_name,
            author_email=self.author_email,
            allow_local_remotes=self.runner.allow_local_remotes,
            base_env=self._base_env,
            remote_url=self.remote_url,
            credentials=self._credentials,
            remote_guard=self.remote_guard,
        )

    async def _git(
        self,
        *args: str,
        stdin: bytes | None = None,
        config: Sequence[tuple[str, str]] = (),
        ok_codes: Container[int] = (0,),
        remote: str | None = None,
    ) -> GitResult:
        """`git <args>` in this working tree, after checking its config (and `remote`'s URLs, when
        the command talks to that remote, which alone then gets the credential)."""
        repo_config = check_repository(self.path)
        credential = None
        if remote is not None:
            urls = check_remote(
                repo_config,
                remote,
                allow_local=self.runner.allow_local_remotes,
                allow_private=self.remote_guard.allow_private,
                expected_url=self.remote_url,
            )
            pins = await self.remote_guard.pins(split_credentials(url)[0] for url in urls)
            await self._scrub_remote_url(repo_config.values(f"remote.{remote}.url"), remote)
            credential = await self._credentials() if self._credentials is not None else None
            config = [*config, *pins, *remote_overrides(remote)]
        return await self.runner.run(
            args, cwd=self.path, stdin=stdin, config=config, ok_codes=ok_codes,
            work_tree=self.path, credential=credential,
        )  # fmt: skip

    async def _scrub_remote_url(self, urls: list[str], remote: str) -> None:
        """A clone made before credentials left URLs kept its token in `.git/config`: rewritten bare."""
        if remote == "origin" and self.remote_url and any(split_credentials(url)[1] for url in urls):
            await self.runner.run(
                ["remote", "set-url", "--end-of-options", remote, self.remote_url],
                cwd=self.path, work_tree=self.path,
            )  # fmt: skip

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        # The common dir is the main clone's .git for every worktree: they all share one lock. The
        # config check finds it without running git (and refuses a repository git must not enter);
        # found once per object: the lock only orders this process's commands, and each command
        # checks the config again before git runs.
        if self._lock_key is None:
            self._lock_key = check_repository(self.path).dirs.common_dir
        async with repository_lock(self._lock_key):
            yield
