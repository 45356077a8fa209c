"""An operator's actions on a project besides its setup: delete it, issue its token, delete one of its
remote branches. Each writes its event in the transaction that does it."""

from __future__ import annotations

from app.domain.actors import fingerprint_of_hash
from app.domain.tokens import new_project_token
from app.services.context import Services
from app.services.events import record
from app.services.workspace import existing_repository
from app.store import projects


async def delete_project(svc: Services, project_id: int) -> None:
    """Delete a project with its runs, steps, events and agent runs. The audit trail keeps what
    operators did to it, this deletion included (app/store/audit_table.py)."""
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, project_id)
        await record(
            conn, project.id, "project.deleted", f"project {project.name} deleted", name=project.name
        )
        await projects.delete_project(conn, project.id)


async def issue_token(svc: Services, project_id: int) -> str:
    """A new token for the project (shown once): the previous one stops working at once."""
    token, digest = new_project_token()
    async with svc.database.transaction() as conn:
        await projects.set_token_hash(conn, project_id, digest)
        fingerprint = fingerprint_of_hash(digest)
        await record(
            conn, project_id, "project.token_issued", f"token {fingerprint} issued", fingerprint=fingerprint
        )
    return token


async def delete_branch(svc: Services, project_id: int, branch: str) -> bool:
    """Delete a remote branch of the project; whether there was one to delete."""
    async with svc.database.read() as conn:
        project = await projects.get(conn, project_id)
    deleted = await existing_repository(svc, project).delete_remote_branch(branch)
    async with svc.database.transaction() as conn:
        said = (
            f"branch {branch} deleted" if deleted else f"branch {branch}: not on the remote, nothing deleted"
        )
        await record(conn, project.id, "branch.deleted", said, branch=branch, deleted=deleted)
    return deleted
