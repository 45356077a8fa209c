"""The branch is the state that travels (DESIGN.md, "Scaling out").

Whenever a run's recorded head moves to a new commit, that commit's objects are kept in PostgreSQL as
a thin git bundle (since the previous head, or since the base commit for the plan's commit), in the
transaction that records the head. A worker that lacks the recorded head (an empty disk, another
machine, a worktree left behind by an earlier step) adds it from those bundles, fetching the
project's remote only for a prerequisite it lacks (the base commit), and checks out exactly the
recorded head before any agent starts. Pushing to the remote stays (CI needs it), but is not the
only copy: a project with no remote, or a remote that refuses the push, still travels.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import ProtocolRun
from app.errors import ConflictError
from app.git import GitRepository
from app.services.context import Services
from app.store import bundles
from app.store.bundles import Bundle


async def pack_head(repo: GitRepository, run: ProtocolRun, sha: str) -> Bundle:
    """The bundle carrying the run from its recorded head (none yet: `sha`'s parent, the base commit
    of the plan's commit) to `sha`; made before the transaction that records `sha` keeps it."""
    since = run.head_sha or await repo.commit_of(f"{sha}~1")
    return Bundle(commit_sha=sha, since_sha=since, data=await repo.bundle(sha, since))


async def keep_head(conn: AsyncConnection, run: ProtocolRun, bundle: Bundle) -> None:
    """Keep the bundle of the head being recorded, in the same transaction as the head."""
    await bundles.keep(conn, run.id, bundle)


async def bring_head(svc: Services, repo: GitRepository, run: ProtocolRun) -> None:
    """Make the run's recorded head commit present in `repo`: from the kept bundles, oldest first,
    fetching the remote once for a prerequisite none of them carries. A ConflictError when it cannot
    be found anywhere."""
    head = run.head_sha
    if head is None or await repo.has_commit(head):
        return
    async with svc.database.read() as conn:
        kept = await bundles.for_run(conn, run.id)
    fetched = False
    for bundle in kept:
        if await repo.has_commit(bundle.commit_sha):
            continue
        if not await repo.has_commit(bundle.since_sha) and not fetched:
            await _fetch(repo)
            fetched = True
        if not await repo.has_commit(bundle.since_sha):
            raise ConflictError(
                f"run {run.name}: commit {bundle.since_sha[:12]}, which its branch starts from, is neither "
                "on this machine nor on the project's remote",
                missing=bundle.since_sha,
            )
        await repo.unbundle(bundle.data)
    if not await repo.has_commit(head) and not fetched:
        await _fetch(repo)  # a run recorded before bundles were kept: its pushed branch
    if not await repo.has_commit(head):
        raise ConflictError(
            f"run {run.name}: its head {head[:12]} is neither on this machine, nor kept in the database, "
            "nor on the project's remote",
            recorded_head=head,
        )


async def catch_up(svc: Services, worktree: GitRepository, run: ProtocolRun, current: str) -> str:
    """A worktree behind the run's recorded head (an earlier step's, left on this machine while
    another worker went on) is moved forward to it; one at or ahead of it is left as it is. `current`
    is where its HEAD is; where it is after is returned."""
    head = run.head_sha
    assert head is not None
    if current == head or (await worktree.has_commit(head) and await worktree.is_ancestor(head, current)):
        return current
    await bring_head(svc, worktree, run)
    if await worktree.is_ancestor(current, head):
        await worktree.fast_forward(head)
        return head
    return current


async def _fetch(repo: GitRepository) -> None:
    """Fetch the project's remote, when the repository has one."""
    if await repo.has_remote():
        await repo.fetch()
