"""What a repository does with its remotes: fetch, push, list and delete remote branches, set the
commit identity and `origin`, and check a remote's URLs (GitRepository inherits these)."""

from __future__ import annotations

from app.domain.refnames import check_branch_name
from app.errors import PushRejectedError
from app.git.config_guard import RECEIVE_PACK, UPLOAD_PACK, check_remote, check_repository
from app.git.credentials import split_credentials
from app.git.parsing import parse_ls_remote_heads, parse_ls_remote_refs, push_was_rejected
from app.git.plumbing import RepositoryPlumbing
from app.git.runner import failure
from app.git.validation import check_remote_name, check_remote_url


class RemoteOperations(RepositoryPlumbing):
    """Remote operations of a repository; each takes the repository's lock."""

    async def fetch(self, remote: str = "origin") -> None:
        """Fetch every branch of `remote`, pruning branches it no longer has."""
        check_remote_name(remote)
        async with self._locked():
            await self._git(
                "fetch", UPLOAD_PACK, "--prune", "--no-recurse-submodules", "--quiet",
                "--end-of-options", remote, remote=remote,
            )  # fmt: skip

    async def push(self, branch: str, remote: str = "origin") -> None:
        """Push `branch` to the same name on `remote`; never forced, so a diverged remote is an error."""
        check_branch_name(branch)
        check_remote_name(remote)
        refspec = f"refs/heads/{branch}:refs/heads/{branch}"
        async with self._locked():
            result = await self._git(
                "push", RECEIVE_PACK, "--no-verify", "--quiet", "--porcelain",
                "--end-of-options", remote, refspec, ok_codes=(0, 1), remote=remote,
            )  # fmt: skip
        if result.exit_code != 0:
            if push_was_rejected(result.stdout):
                raise PushRejectedError(
                    f"{remote} refused {branch}: it has commits this run does not (a non-fast-forward "
                    "push); reconcile the branches by hand, then retry the step",
                    branch=branch,
                    remote=remote,
                )
            raise failure("push", result)

    async def list_remote_branches(self, remote: str = "origin") -> list[str]:
        """Names of the branches `remote` has now (asked over the network, not from tracking refs)."""
        check_remote_name(remote)
        async with self._locked():
            result = await self._git(
                "ls-remote", UPLOAD_PACK, "--heads", "--end-of-options", remote, remote=remote
            )
        return parse_ls_remote_heads(result.text)

    async def delete_remote_branch(self, branch: str, remote: str = "origin") -> bool:
        """Delete `branch` on `remote`; False when it was not there."""
        check_branch_name(branch)
        check_remote_name(remote)
        ref = f"refs/heads/{branch}"
        async with self._locked():
            # Asked first: some servers accept deleting a missing ref with only a warning.
            listed = await self._git(
                "ls-remote", UPLOAD_PACK, "--heads", "--end-of-options", remote, ref,
                remote=remote,
            )  # fmt: skip
            if ref not in parse_ls_remote_refs(listed.text):
                return False
            await self._git(
                "push",
                RECEIVE_PACK,
                "--no-verify",
                "--quiet",
                "--end-of-options",
                remote,
                f":{ref}",
                remote=remote,
            )
        return True

    async def configure(self, *, origin: str | None) -> None:
        """Write the commit identity into the repository's own config (so commits made there by hand
        match the agents'), and point `origin` at `origin` (added when missing), checked like any git
        URL first. Asked for by TASKSGODZILLA_SETUP_GIT_CONFIG; never done otherwise."""
        if origin is not None:
            check_remote_url(
                origin,
                allow_local=self.runner.allow_local_remotes,
                allow_private=self.remote_guard.allow_private,
            )
        async with self._locked():
            for key, value in (("user.name", self.author_name), ("user.email", self.author_email)):
                await self._git("config", "--local", "--end-of-options", key, value)
            if origin is None:
                return
            found = await self._git("remote", "get-url", "--end-of-options", "origin", ok_codes=(0, 2, 128))
            verb = "set-url" if found.exit_code == 0 else "add"
            await self._git("remote", verb, "--end-of-options", "origin", origin)

    async def check_remote(self, remote: str = "origin") -> None:
        """Refuse (UnsafeRepositoryError) a remote whose fetch or push URLs may not be used, their hosts
        resolved now; a repository without that remote passes (it has nothing to fetch or push)."""
        check_remote_name(remote)
        async with self._locked():
            urls = check_remote(
                check_repository(self.path),
                remote,
                allow_local=self.runner.allow_local_remotes,
                allow_private=self.remote_guard.allow_private,
                expected_url=None,
            )
            await self.remote_guard.pins(split_credentials(url)[0] for url in urls)
